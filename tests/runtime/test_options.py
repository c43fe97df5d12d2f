"""The Runtime's knobs are typed for IDEs and mypy (``RuntimeKnobs``, ``RuntimeChanges``, ``StreamKnobs``)
and stay the very fields of ``RuntimeOptions`` / ``StreamSettings``, where their defaults live."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

import pytest

from i3d_edge.errors import ConfigError
from i3d_edge.runtime import Runtime, RuntimeChanges, RuntimeKnobs, RuntimeOptions
from i3d_edge.runtime.stream_settings import StreamKnobs, StreamSettings

ROOT = Path(__file__).resolve().parents[2]
FIXED_AT_LOAD = {"threads", "providers", "precision", "lazy"}  # a loaded Runtime's sessions depend on them


def test_runtime_knobs_are_the_options_fields_with_their_types():
    fields = typing.get_type_hints(RuntimeOptions)
    knobs = typing.get_type_hints(RuntimeKnobs)
    assert set(knobs) == {f.name for f in dataclasses.fields(RuntimeOptions)}
    assert {k: v for k, v in knobs.items() if k != "providers"} == {k: v for k, v in fields.items()
                                                                    if k != "providers"}
    assert knobs["providers"] == Sequence[str] | None  # any sequence of names; None: the default


def test_changes_are_the_knobs_a_loaded_runtime_can_change():
    assert RuntimeKnobs.__optional_keys__ - RuntimeChanges.__optional_keys__ == FIXED_AT_LOAD
    assert RuntimeKnobs.__required_keys__ == RuntimeChanges.__required_keys__ == frozenset()


def test_with_options_refuses_exactly_the_knobs_fixed_at_load():
    rt = Runtime(decoder="greedy")
    for name in sorted(FIXED_AT_LOAD):
        with pytest.raises(ConfigError, match=f"^{name} cannot change on a loaded Runtime; create a new one$"):
            rt.with_options(**{name: getattr(RuntimeOptions(), name)})
    assert rt.with_options(threshold=0.25, batch_size=3).options == RuntimeOptions(
        threshold=0.25, batch_size=3, decoder="greedy")


def test_stream_knobs_are_the_stream_settings_fields_with_their_types():
    assert typing.get_type_hints(StreamKnobs) == typing.get_type_hints(StreamSettings)
    assert StreamKnobs.__required_keys__ == frozenset()


@pytest.mark.slow
def test_mypy_sees_the_knobs(tmp_path):
    """A misspelt knob, a knob a loaded Runtime cannot change and values of the wrong type are mypy
    errors; good calls are not."""
    pytest.importorskip("mypy", reason="mypy comes with the [dev] extra")
    code = tmp_path / "uses_knobs.py"
    code.write_text("from i3d_edge.runtime import Runtime\n\n"
                    "rt = Runtime('bundle', treshold=0.5)\n"
                    "rt.with_options(threads=2)\n"
                    "rt.with_options(threshold='high')\n"
                    "rt.stream(vad=3)\n"
                    "good = Runtime('bundle', threshold=0.4, providers=['CPUExecutionProvider'], lazy=True)\n"
                    "good.with_options(max_modules=4, decoder='greedy').stream(min_silence=0.3)\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context",
                           "--no-pretty", str(code)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    errors = sorted(line.split(": error: ")[0].rsplit(":", 1)[-1] + ": " + line.split(": error: ")[1]
                    for line in proc.stdout.splitlines() if ": error: " in line)
    assert errors == [
        '3: Unexpected keyword argument "treshold" for "Runtime"; did you mean "threshold"?  [call-arg]',
        '4: Unexpected keyword argument "threads" for "with_options" of "Runtime"  [call-arg]',
        '5: Argument "threshold" to "with_options" of "Runtime" has incompatible type "str"; expected '
        '"float | None"  [arg-type]',
        '6: Argument "vad" to "stream" of "Runtime" has incompatible type "int"; expected "str"  [arg-type]',
    ], proc.stdout + proc.stderr
