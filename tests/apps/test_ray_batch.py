"""``transcribe_dataset`` on a real local Ray cluster (``ray.init(num_cpus=2)``, one per module):
rows equal the Runtime's transcripts, a corrupt file is one error row, a killed worker's batch is
retried with exactly one row per input."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need the [ray] extra")

from i3d_edge.apps.ray_batch import transcribe_dataset  # noqa: E402
from i3d_edge.runtime import Runtime  # noqa: E402

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.wav"))
pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # Ray start-up and actors: tens of seconds


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The repository's samples, two copies each (in a sub-folder), and one corrupt file."""
    root = tmp_path_factory.mktemp("archive")
    for i, wav in enumerate(SAMPLES):
        shutil.copy(wav, root / wav.name)
        (root / "copies").mkdir(exist_ok=True)
        shutil.copy(wav, root / "copies" / f"{i}-{wav.name}")
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    return root


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    """The single-process Runtime's transcript of each sample, by file name."""
    rt = Runtime()
    return {wav.name: rt.transcribe(wav).to_dict() for wav in SAMPLES}


def _source_name(path: str) -> str:
    name = Path(path).name
    return name.split("-", 1)[1] if "-" in name else name


def _check_good_row(row: dict, want: dict) -> None:
    assert row["error"] is None, row["error"]
    assert row["text"] == want["text"]
    assert row["tokens"] == want["tokens"] and row["words"] == want["words"]
    assert round(row["confidence"], 4) == want["confidence"]
    assert row["modules_executed"] == want["modules_executed"]
    assert row["executed_modules"] == want["executed_modules"]
    assert row["duration"] == pytest.approx(want["duration"], abs=1e-3)
    assert row["processing_seconds"] > 0 and row["warnings"] == []


def test_paths_give_the_runtime_transcripts_and_a_corrupt_file_one_error_row(local_ray, archive, reference):
    paths = sorted(str(p) for p in archive.rglob("*.wav"))
    rows = transcribe_dataset(paths, actors=2, rows_per_batch=2).take_all()
    assert sorted(r["path"] for r in rows) == paths  # exactly one row per input
    by_path = {r["path"]: r for r in rows}
    bad = by_path.pop(str(archive / "corrupt.wav"))
    assert bad["text"] is None and bad["tokens"] == []
    assert bad["error"].startswith(f"{archive / 'corrupt.wav'}: not a readable audio file")
    for path, row in by_path.items():
        _check_good_row(row, reference[_source_name(path)])


def test_bytes_and_a_csv_manifest(local_ray, archive, reference, tmp_path):
    rows = transcribe_dataset(ray.data.read_binary_files(str(archive / "copies"), include_paths=True)).take_all()
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in (archive / "copies").iterdir())
    for row in rows:
        _check_good_row(row, reference[_source_name(row["path"])])

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,speaker\n" + "".join(f"{p},x\n" for p in SAMPLES))
    rows = transcribe_dataset(ray.data.read_csv(str(manifest)), threshold=0.5).take_all()
    assert sorted(r["path"] for r in rows) == [str(p) for p in SAMPLES]
    for row in rows:
        _check_good_row(row, reference[Path(row["path"]).name])


def _stall_once(marker: str, target: str):
    """A row function that, the first time it meets ``target``, writes its pid to ``marker`` and waits
    to be killed; later (the retried batch) it passes rows through."""

    def stall(row: dict) -> dict:
        if row["path"] == target and not os.path.exists(marker):
            Path(marker + ".tmp").write_text(str(os.getpid()))
            os.replace(marker + ".tmp", marker)
            time.sleep(600)
        return row

    return stall


def test_a_killed_worker_has_its_batch_retried_once(local_ray, archive, reference, tmp_path):
    psutil = pytest.importorskip("psutil")
    paths = sorted(str(p) for p in archive.rglob("*.wav") if p.name != "corrupt.wav")
    marker = str(tmp_path / "stalled.pid")
    ds = ray.data.from_items([{"path": p} for p in paths]).map(_stall_once(marker, paths[2]))
    killed: list[str] = []

    def kill_when_stalled() -> None:
        deadline = time.monotonic() + 300
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(Path(marker).read_text())
        killed.append(" ".join(psutil.Process(pid).cmdline()))
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_stalled, daemon=True)
    killer.start()
    rows = transcribe_dataset(ds, actors=1, rows_per_batch=2).take_all()
    killer.join(timeout=10)
    assert killed and "_Transcriber" in killed[0], killed  # the transcribing actor died mid-batch
    assert sorted(r["path"] for r in rows) == paths  # every input once: none lost, none duplicated
    for row in rows:
        _check_good_row(row, reference[_source_name(row["path"])])
