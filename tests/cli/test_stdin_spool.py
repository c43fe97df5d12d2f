"""``transcribe -`` spools standard input within a size limit ($I3D_EDGE_STDIN_LIMIT, 4 GiB by default),
the spool never outlives the process (SIGTERM and SIGKILL included), and a spool that cannot be
written is one line; the other inputs of the run go on."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from i3d_edge.cli.inputs import DEFAULT_STDIN_LIMIT, stdin_limit
from i3d_edge.errors import AudioError
from i3d_edge.runtime import Runtime
from tests.conftest import ROOT, default_signals, speechlike

LIMIT_LINE = ("error: -: standard input is larger than 1 MiB (the limit; set I3D_EDGE_STDIN_LIMIT, e.g. "
              "I3D_EDGE_STDIN_LIMIT=16G, to raise it)")


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2)


def _run(args: list[str], spool: Path, data: bytes, limit: str | None = None, fsize: int | None = None):
    """``i3d-edge ARGS`` with ``data`` on stdin and temporary files in ``spool``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(spool)}
    env.pop("I3D_EDGE_STDIN_LIMIT", None)
    if limit is not None:
        env["I3D_EDGE_STDIN_LIMIT"] = limit

    def bound() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    spool.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "i3d_edge", *args], input=data, capture_output=True, timeout=300,
                          env=env, preexec_fn=bound, check=False)


def _spools(folder: Path) -> list[str]:
    """The spool files in ``folder`` (other libraries may leave their own temporary files there)."""
    return [p.name for p in folder.iterdir() if p.name.startswith("i3d-edge-stdin-")]


def _wav_bytes(tmp_path: Path, seconds: float) -> bytes:
    path = tmp_path / f"in-{seconds}.wav"
    sf.write(path, speechlike(seconds, seed=3), 16000)
    return path.read_bytes()


def test_stdin_beyond_the_limit_is_one_line_and_the_other_inputs_go_on(bundle, wav, tmp_path):
    spool = tmp_path / "spool"
    proc = _run(["transcribe", str(wav), "-", "-m", str(bundle)], spool, bytes(2 << 20), limit="1M")
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [LIMIT_LINE]
    assert proc.stdout.decode() == f"{wav}: {Runtime(bundle).transcribe(wav).text}\n"
    assert _spools(spool) == []


def test_stdin_within_the_limit_is_transcribed(bundle, tmp_path):
    data = _wav_bytes(tmp_path, 1.0)  # 32 kB
    proc = _run(["transcribe", "-", "-m", str(bundle)], tmp_path / "spool", data, limit="40K")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == Runtime(bundle).transcribe(tmp_path / "in-1.0.wav").text + "\n"
    assert _spools(tmp_path / "spool") == []


def test_a_spool_that_cannot_be_written_is_one_line(bundle, tmp_path):
    """A file size limit (the same path as a full disk: the write fails) names stdin and the cause."""
    proc = _run(["transcribe", "-", "-m", str(bundle)], tmp_path / "spool", bytes(3 << 20), fsize=1 << 20)
    assert proc.returncode == 1
    assert proc.stderr.decode() == "error: -: cannot spool standard input to a temporary file (File too large)\n"
    assert _spools(tmp_path / "spool") == []


@pytest.mark.parametrize("value", ["lots", "-5", "0", "12X"])
def test_a_bad_limit_is_one_line(bundle, tmp_path, value):
    proc = _run(["transcribe", "-", "-m", str(bundle)], tmp_path / "spool", b"x", limit=value)
    assert proc.returncode == 1
    assert proc.stderr.decode() == (f"error: -: I3D_EDGE_STDIN_LIMIT={value!r} is not a size (e.g. 8G, 500M or "
                                    "bytes)\n")


@pytest.mark.parametrize(("value", "size"), [("", DEFAULT_STDIN_LIMIT), ("1048576", 1 << 20), ("500M", 500 << 20),
                                             ("8G", 8 << 30), ("2GiB", 2 << 30), ("16k", 16 << 10)])
def test_the_limit_reads_sizes(monkeypatch, value, size):
    monkeypatch.setenv("I3D_EDGE_STDIN_LIMIT", value)
    assert stdin_limit() == size
    assert DEFAULT_STDIN_LIMIT == 4 << 30


def test_an_unreadable_limit_is_an_audio_error(monkeypatch):
    monkeypatch.setenv("I3D_EDGE_STDIN_LIMIT", "1.5G")
    with pytest.raises(AudioError):
        stdin_limit()


def _holds_spool(pid: int) -> bool:
    """Whether process ``pid`` has the (unlinked) spool file open."""
    try:
        return any("i3d-edge-stdin-" in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the spool is read through /proc/self/fd on Linux")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_spool_never_outlives_a_killed_run(bundle, tmp_path, sig):
    """Killed while it spools an endless stdin: no spool file is left (nor ever named in the folder)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(spool)}
    proc = subprocess.Popen([sys.executable, "-m", "i3d_edge", "transcribe", "-", "-m", str(bundle)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=default_signals)
    try:
        assert proc.stdin is not None
        block = np.zeros(1 << 18, dtype=np.uint8).tobytes()
        deadline = time.monotonic() + 120
        while not _holds_spool(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            proc.stdin.write(block)
        proc.stdin.write(block)
        assert _spools(spool) == []  # spooling, yet nothing has a name that could be left behind
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -sig
    assert _spools(spool) == []


def test_a_long_input_named_on_disk_is_unaffected_by_the_stdin_limit(bundle, tmp_path):
    """The limit is about stdin only: a file larger than it is read as usual."""
    data = _wav_bytes(tmp_path, 2.0)
    proc = _run(["transcribe", str(tmp_path / "in-2.0.wav"), "-m", str(bundle)], tmp_path / "spool", b"", limit="1K")
    assert proc.returncode == 0, proc.stderr
    assert len(data) > 1024
    assert proc.stdout.decode() == Runtime(bundle).transcribe(tmp_path / "in-2.0.wav").text + "\n"
