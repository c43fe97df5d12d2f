"""``i3d-edge lm`` on hostile inputs: bad ARPA files are refused before KenLM sees them, training
text that is endless, has endless lines or words, or no sentences is a one-line error naming the
text file, and an interrupted run leaves the bundle as it was (no temporary file).

Each case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``) and asserts the exit status, the single ``error:`` line naming the
file and the cause, and that no traceback is printed.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tests.conftest import BAD_ARPA, ROOT, one_line_error, run_cli, signal_when, snapshot, text_file


@pytest.mark.parametrize("case", list(BAD_ARPA))
def test_a_bad_arpa_file_is_refused_before_kenlm_sees_it(bundle, tmp_path, case):
    text, fragment = BAD_ARPA[case]
    arpa = tmp_path / f"{case}.arpa"
    arpa.write_text(text)
    before = snapshot(bundle)
    line = one_line_error(run_cli("lm", str(bundle), "--arpa", str(arpa), cache=tmp_path / "cache"), fragment)
    assert str(arpa) in line and "not a usable ARPA language model" in line
    assert snapshot(bundle) == before and not (bundle / "lm").exists()  # no .tmp-*.arpa left behind


def test_lm_text_from_dev_zero_is_bounded(bundle, tmp_path):
    before = snapshot(bundle)
    line = one_line_error(run_cli("lm", str(bundle), "--text", "/dev/zero", cache=tmp_path / "c", memory_mb=1024),
                          "/dev/zero: line 1 is longer than 65536 characters")
    assert line and snapshot(bundle) == before and not (bundle / "lm").exists()


@pytest.mark.parametrize(("content", "fragment"), [
    ("one two\none " + "a" * 100_000 + " two\n", "line 2 is longer than 65536 characters"),
    ("one two\none " + "a" * 1000 + " two\n", "line 2 has a word longer than 256 characters"),
    ("\n  \n\t\n", "the training text has no non-empty sentences"),
])
def test_lm_text_errors_name_the_text_file(bundle, tmp_path, content, fragment):
    text = text_file(tmp_path, content)
    before = snapshot(bundle)
    line = one_line_error(run_cli("lm", str(bundle), "--text", str(text), cache=tmp_path / "c"), fragment)
    assert line.startswith(f"error: {text}: ")
    assert snapshot(bundle) == before and not (bundle / "lm").exists()


@pytest.mark.skipif(os.name != "posix", reason="sends SIGTERM")
def test_sigterm_during_lm_leaves_no_temporary_file(bundle, tmp_path):
    import signal

    rng = np.random.default_rng(0)
    words = np.array(["".join(rng.choice(list("abcdefgh"), 6)) for _ in range(5000)])
    text = tmp_path / "big.txt"
    text.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(200_000)) + "\n")
    before = snapshot(bundle)
    code, stdout, stderr = signal_when(
        [sys.executable, "-m", "i3d_edge", "lm", str(bundle), "--text", str(text)],
        lambda: (bundle / "lm").is_dir() and any((bundle / "lm").glob(".tmp-*.arpa")), signal.SIGTERM,
        env={**os.environ, "PYTHONPATH": str(ROOT), "I3D_EDGE_CACHE_DIR": str(tmp_path / "c")}, what="lm")
    assert code == 130 and stderr == "error: interrupted\n" and "attached" not in stdout, stderr
    assert snapshot(bundle) == before and not (bundle / "lm").exists()
