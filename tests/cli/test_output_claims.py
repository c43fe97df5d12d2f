"""Outputs are claimed atomically and never overwrite an input or leave the output directory: of two
runs writing one name, one fails instead of silently replacing the other's result; ``--force`` does
not overwrite the input itself; a symlinked folder inside ``--output-dir`` is not followed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from i3d_edge.cli.outputs import OutputExistsError, publish
from i3d_edge.runtime import Runtime
from tests.conftest import ROOT, one_line_error, run_cli


def test_publish_claims_a_name_once(tmp_path):
    target = tmp_path / "a.txt"
    publish(target, "first\n")
    with pytest.raises(OutputExistsError):
        publish(target, "second\n")
    assert target.read_text() == "first\n"
    publish(target, "third\n", overwrite=True)
    assert target.read_text() == "third\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary file left


def test_of_concurrent_writers_of_one_name_exactly_one_wins(tmp_path):
    target = tmp_path / "out" / "same.txt"
    barrier = threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def write(i: int) -> None:
        barrier.wait()
        try:
            publish(target, f"run {i}\n", root=tmp_path / "out")
            outcomes[i] = "won"
        except OutputExistsError:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == 8
    assert target.read_text() == f"run {winners[0]}\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["same.txt"]


def test_publish_does_not_follow_a_symlinked_folder_inside_the_root(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "day1").symlink_to(outside)
    with pytest.raises(OSError) as info:
        publish(out / "day1" / "a.txt", "x\n", root=out)
    assert "not followed" in str(info.value)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("how", ["-o", "--output-dir"])
def test_force_never_overwrites_the_input(bundle, wav, tmp_path, how):
    talk = tmp_path / ("talk.wav" if how == "-o" else "talk.txt")  # audio read whatever its extension
    shutil.copyfile(wav, talk)
    before = talk.read_bytes()
    where = ["-o", str(talk)] if how == "-o" else ["--output-dir", str(tmp_path)]
    proc = run_cli("transcribe", str(talk), *where, "--force", "--model", str(bundle))
    one_line_error(proc, f"{talk}: its output {talk} is an input file")
    assert talk.read_bytes() == before


def test_a_symlinked_folder_inside_the_output_dir_is_not_followed(bundle, wav, tmp_path):
    rec, out, outside = tmp_path / "rec", tmp_path / "out", tmp_path / "outside"
    (rec / "day1").mkdir(parents=True)
    shutil.copyfile(wav, rec / "day1" / "a.wav")
    shutil.copyfile(wav, rec / "b.wav")
    out.mkdir()
    outside.mkdir()
    (out / "day1").symlink_to(outside)
    proc = run_cli("transcribe", str(rec), "--output-dir", str(out), "--model", str(bundle))
    one_line_error(proc, f"{rec / 'day1' / 'a.wav'}: {out / 'day1'} is a symlink inside the output directory")
    assert list(outside.iterdir()) == []
    assert (out / "b.txt").read_text() == Runtime(bundle).transcribe(wav).text + "\n"  # the other input is done


def _holds_spool(pid: int) -> bool:
    """Whether process ``pid`` has its stdin spool open (it planned its outputs before creating it)."""
    try:
        return any("i3d-edge-stdin-" in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="waits on the spool through /proc (Linux)")
def test_an_output_claimed_meanwhile_by_another_run_is_an_error_not_a_replacement(bundle, wav, tmp_path):
    """Two runs, different inputs, the same output name: the second planned its outputs (no a.txt yet)
    and waits on its stdin while the first writes a.txt; it then fails for that input, and the first's
    result stays."""
    out = tmp_path / "out"
    first, second = tmp_path / "one" / "a.wav", tmp_path / "two" / "a.wav"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copyfile(wav, path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    slow = subprocess.Popen([sys.executable, "-m", "i3d_edge", "transcribe", "-", str(second), "-d", str(out),
                             "-m", str(bundle)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while not _holds_spool(slow.pid):
            assert slow.poll() is None and time.monotonic() < deadline, slow.communicate()
            time.sleep(0.05)
        done = run_cli("transcribe", str(first), "-d", str(out), "--model", str(bundle))
        assert done.returncode == 0, done.stderr
        _, err = slow.communicate(wav.read_bytes(), timeout=180)
    finally:
        slow.kill()
        slow.wait()
    assert slow.returncode == 1
    assert err.decode().splitlines() == [f"error: {second}: cannot write {out / 'a.txt'} (it exists: another run "
                                         "wrote it meanwhile (--force overwrites))"]
    text = Runtime(bundle).transcribe(first).text + "\n"
    assert (out / "a.txt").read_text() == text and (out / "stdin.txt").read_text() == text
