"""Bad and odd audio files (``tests.conftest.BAD_AUDIO``, ``ODD_AUDIO``) through ``i3d-edge transcribe``:
one ``error:`` line per bad file naming it and the cause, the other files still transcribed, exit
status 1, no traceback. A CliRunner call with garbage, short, header-only, NaN, directory and missing
files is in test_transcribe.py; the same files through the API in runtime/test_bad_audio_files.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import i3d_edge.cli.transcribe  # noqa: F401  (registers the command)
from i3d_edge.cli import app
from tests.conftest import BAD_AUDIO, TINY

# the command line expands a directory into its audio files: an empty one is its own error
CLI_CAUSE = {**{case: cause for case, (_, cause) in BAD_AUDIO.items()}, "directory": "no files with an audio extension"}
# CliRunner per case only where test_transcribe.py has no such file yet
CLI_NEW = ["empty", "one_sample", "random_bytes", "inf", "minus_inf", "too_loud",
           "near_float_max_stereo", "name_too_long"]


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2, **TINY)


def cli(*args: object):
    result = CliRunner().invoke(app, ["transcribe", *map(str, args)])
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("case", CLI_NEW)
def test_cli_reports_one_line_and_goes_on(bundle, audio_files, case):
    good, bad = audio_files["good"], audio_files["bad"][case]
    result = cli(good["a"], bad, good["b"], "-m", bundle, "--format", "json")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert [json.loads(line)["audio"] for line in result.stdout.splitlines()] == [str(good["a"]), str(good["b"])]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: ") and BAD_AUDIO[case][1] in lines[0], result.stderr


def test_one_real_process_with_every_bad_and_odd_file(bundle, audio_files):
    """The installed entry point, in its own process: every case in one call."""
    good, bad, odd = audio_files["good"], audio_files["bad"], audio_files["odd"]
    items = [good["a"], *bad.values(), *odd.values(), good["b"]]
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", *map(str, items), "--model", str(bundle),
                           "--format", "json", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    transcribed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [t["audio"] for t in transcribed] == [str(p) for p in (good["a"], *odd.values(), good["b"])]
    for t in transcribed[1:-1]:
        assert t["duration"] == pytest.approx(1.5, abs=2e-3)
    errors = proc.stderr.splitlines()
    assert len(errors) == len(bad)
    for line, (case, path) in zip(errors, bad.items(), strict=True):
        assert line.startswith(f"error: {path}: ") and CLI_CAUSE[case] in line, (case, line)


