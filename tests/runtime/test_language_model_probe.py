"""Word language models carried by a bundle are probed before KenLM loads them in-process: a file
that would crash the loader is refused in one line (the process survives and greedy decoding of the
same bundle still works); a good one is probed once and its verdict cached on disk.

Each case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``) and asserts the exit status, the single ``error:`` line naming the
file and the cause, and that no traceback is printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import sha256_file
from i3d_edge.runtime import Runtime
from tests.conftest import BAD_ARPA, manifest_json, one_line_error, run_cli, save_manifest_json, text_file


def _carry_lm(bundle: Path, text: str) -> Path:
    """Put an ARPA file into the bundle's manifest by hand, with its true hash (as an attacker would)."""
    rel = "lm/words-0123456789abcdef.arpa"
    (bundle / "lm").mkdir()
    (bundle / rel).write_text(text)
    data = manifest_json(bundle)
    data["files"][rel] = {"sha256": sha256_file(bundle / rel), "bytes": (bundle / rel).stat().st_size}
    data["decoder"] = {"kind": "lexicon-kenlm", "lm": rel, "lm_weight": 1.0, "word_score": 0.0, "beam_size": 8,
                       "beam_threshold": 25.0}
    save_manifest_json(bundle, data)
    return bundle / rel


@pytest.mark.parametrize("case", ["negative_count", "word_of_100000_characters"])
def test_a_bundle_carrying_a_crashing_lm_is_a_one_line_error_and_greedy_still_works(bundle, wav, tmp_path, case):
    """Both files crash KenLM's loader (exit status 139 when loaded in-process): the LM is refused in
    one line, the process survives, and greedy decoding of the same bundle works."""
    pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra")
    text, fragment = BAD_ARPA[case]
    path = _carry_lm(bundle, text)
    cache = tmp_path / "cache"
    for command in (["transcribe", str(wav), "--model", str(bundle), "--decoder", "lm"], ["inspect", str(bundle)]):
        line = one_line_error(run_cli(*command, cache=cache), str(path.resolve()), fragment)
    greedy = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "greedy", cache=cache)
    assert greedy.returncode == 0 and greedy.stderr == "", greedy.stderr
    rt = Runtime(bundle, decoder="greedy")
    assert greedy.stdout.strip() == rt.transcribe(wav).text
    lm_rt = Runtime(bundle, decoder="lm")
    for _ in range(2):  # the verdict is cached: the second call fails the same way, the process lives on
        with pytest.raises(BundleError) as info:
            lm_rt.transcribe(wav)
        assert f"error: {info.value}" == line
    assert not cache.exists()  # a refused model leaves no verdict on disk


def test_a_good_lm_is_probed_once_and_its_verdict_cached_on_disk(bundle, wav, tmp_path):
    pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra")
    cache = tmp_path / "cache"
    first = run_cli("lm", str(bundle), "--text", str(text_file(tmp_path, "one two\ntwo one one\n")), cache=cache)
    assert first.returncode == 0, first.stderr
    verdicts = list((cache / "lm-verdicts").iterdir())
    assert len(verdicts) == 1 and verdicts[0].read_text() == "ok\n"
    run = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "lm", cache=cache)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert list((cache / "lm-verdicts").iterdir()) == verdicts
