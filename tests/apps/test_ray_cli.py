"""``i3d-edge transcribe --ray ADDRESS`` through a head node and a second worker node on this
machine (``ray start --head``, ``ray start --address``; stopped afterwards): the same files as the
single-process command, file by file; an interrupted driver finished by ``--skip-existing``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("ray", reason="the Ray tests need the [ray] extra")
pq = pytest.importorskip("pyarrow.parquet")

import i3d_edge.cli.transcribe  # noqa: E402,F401  (registers the command)
from i3d_edge.cli import app  # noqa: E402
from tests.conftest import ROOT, signal_when  # noqa: E402

SAMPLES = sorted((ROOT / "samples").glob("*.wav"))
RAY = str(Path(sys.executable).with_name("ray"))
STARTUP = 240  # seconds: the machine may be busy
# Ray's token authentication, as on a real cluster: the nodes and every driver share this run's token
# (a driver given an explicit address turns it on only when told: RAY_AUTH_MODE=token)
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
ENV = {**os.environ, "PYTHONPATH": str(ROOT), **AUTH}
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

WAIT_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while sum(n["Alive"] for n in ray.nodes()) < 2:
    assert time.monotonic() < deadline, ray.nodes()
    time.sleep(0.5)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node of one CPU each; yields the head's address."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live below it
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    procs = [subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                               "--include-dashboard=false", f"--temp-dir={temp}", *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)]
    try:
        subprocess.run([sys.executable, "-c", WAIT_NODES.replace("< 2", "< 1"), address, str(STARTUP)],
                       check=True, timeout=STARTUP + 60, capture_output=True, env=ENV)
        procs.append(subprocess.Popen([RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1",
                                       *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True, env=ENV))
        subprocess.run([sys.executable, "-c", WAIT_NODES, address, str(STARTUP)], check=True,
                       timeout=STARTUP + 60, capture_output=True, env=ENV)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for proc in procs:  # nothing of the cluster outlives the tests
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The samples, four copies each below day1/ and day2/, and one corrupt file."""
    root = tmp_path_factory.mktemp("archive")
    for day in ("day1", "day2"):
        (root / day).mkdir()
        for i, wav in enumerate(SAMPLES):
            for copy in range(2):
                shutil.copy(wav, root / day / f"{day}-{wav.stem}-{i}{copy}.wav")
    (root / "day2" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    return root


@pytest.fixture(scope="module")
def single(archive, tmp_path_factory) -> Path:
    """The single-process command's output files of the archive."""
    out = tmp_path_factory.mktemp("single")
    result = CliRunner().invoke(app, ["transcribe", str(archive), "--output-dir", str(out), "-f", "all"])
    assert result.exit_code == 1, result.output  # the corrupt file
    return out


def _ray_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", *args], capture_output=True, text=True,
                          timeout=600, env={**ENV, **(env or {})})


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_same_outputs(got: Path, want: Path) -> None:
    """File by file: the same names; text, srt and vtt byte for byte; JSON equal but for timings."""
    got_files = {k: v for k, v in _files(got).items() if k != "transcripts.parquet"}
    want_files = _files(want)
    assert sorted(got_files) == sorted(want_files)
    for name, path in want_files.items():
        if name.endswith(".json"):
            a, b = json.loads(got_files[name].read_text()), json.loads(path.read_text())
            for doc in (a, b):
                del doc["timings"], doc["rtf"]
            assert a == b, name
        else:
            assert got_files[name].read_bytes() == path.read_bytes(), name


def test_the_cluster_writes_the_single_process_files(cluster, archive, single, tmp_path):
    out = tmp_path / "out"
    proc = _ray_cli(str(archive), "--output-dir", str(out), "-f", "all", "--ray", cluster, "--ray-actors", "2")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # the corrupt file, reported in one line
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {archive / 'day2' / 'corrupt.wav'}: not a readable audio file"
                      + errors[0].split("not a readable audio file", 1)[1]]
    _assert_same_outputs(out, single)
    inputs = sorted(str(p) for p in archive.rglob("*.wav"))
    table = pq.read_table(out / "transcripts.parquet").to_pylist()
    assert sorted(r["path"] for r in table) == inputs  # one row per input
    assert [r["path"] for r in table if r["error"] is not None] == [str(archive / "day2" / "corrupt.wav")]
    for row in table:
        if row["error"] is None:
            rel = Path(row["path"]).relative_to(archive).with_suffix(".txt")
            assert row["text"] + "\n" == (single / rel).read_text()
    audio_hours = sum(r["duration"] for r in table if r["error"] is None) / 3600
    assert f"done: {len(inputs)} files, {audio_hours:.3f} h audio, 1 errors" in proc.stderr


def test_an_interrupted_driver_is_finished_by_skip_existing(cluster, archive, single, tmp_path):
    out = tmp_path / "out"
    good = sorted(p for p in archive.rglob("*.wav") if p.name != "corrupt.wav")
    args = [sys.executable, "-m", "i3d_edge", "transcribe", *map(str, good), "--output-dir", str(out),
            "--ray", cluster, "--ray-actors", "1"]
    code, _, stderr = signal_when(args, lambda: out.is_dir() and any(out.glob("*.txt")), signal.SIGINT, env=ENV,
                                  what="transcribe --ray")
    assert code != 0 and "Traceback" not in stderr, stderr
    done = sorted(p.name for p in out.glob("*.txt"))
    assert not list(out.glob(".*.part"))  # nothing half-written
    # the rerun joins the cluster through "auto" and RAY_ADDRESS, and does only what is left
    proc = _ray_cli(*map(str, good), "--output-dir", str(out), "--ray", "auto", "--skip-existing",
                    env={"RAY_ADDRESS": cluster})
    assert proc.returncode == 0, proc.stderr
    if len(done) < len(good):
        assert f"done: {len(good) - len(done)} files" in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.glob("*.txt")) == sorted(p.with_suffix(".txt").name for p in good)
    for wav in good:
        rel = wav.relative_to(archive).with_suffix(".txt")
        assert (out / rel.name).read_bytes() == (single / rel).read_bytes()
