"""``i3d-edge transcribe`` streams a three-hour file in bounded memory: its peak RSS is that of a
five-minute file (plus the growing transcript), far below the decoded audio."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import TINY, speechlike


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2, **TINY)


def _write_hours(path: Path, hours: float, block_seconds: float = 30.0) -> None:
    """A long PCM_16 file written one block at a time (a few distinct blocks, cycled)."""
    blocks = [(speechlike(block_seconds, seed=100 + i) * 32767).astype(np.int16) for i in range(6)]
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as fh:
        for i in range(round(hours * 3600 / block_seconds)):
            fh.write(blocks[i % len(blocks)])


# The CLI in a child process that writes its own peak RSS (VmHWM) at exit. The child's rusage is
# no good here: Linux carries the pre-exec high-water mark into it, i.e. that of this pytest process.
_PEAK_RSS_CHILD = """
import atexit, sys

def report(path=sys.argv[1]):
    with open("/proc/self/status") as fh:
        peak = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))  # KiB
    with open(path, "w") as out:
        out.write(peak)

atexit.register(report)
sys.argv = ["i3d-edge", *sys.argv[2:]]
from i3d_edge.cli import main
main()
"""


def _transcribe_in_child(path: Path, bundle: Path, out: Path) -> tuple[int, float, float]:
    """Run ``i3d-edge transcribe`` once in a child process: (exit status, peak RSS in MB, wall seconds)."""
    peak = out.with_suffix(".peak")
    started = time.perf_counter()
    with open(out, "w") as stdout:
        proc = subprocess.run([sys.executable, "-c", _PEAK_RSS_CHILD, str(peak), "transcribe", str(path),
                               "--model", str(bundle), "--format", "json", "--threads", "1"],
                              stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=1200)
    wall = time.perf_counter() - started
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, int(peak.read_text()) / 1024, wall


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_three_hour_file_streams_in_bounded_memory(bundle, tmp_path):
    long, short = tmp_path / "three_hours.wav", tmp_path / "five_minutes.wav"
    _write_hours(long, 3.0)
    _write_hours(short, 5 / 60)
    decoded = 3 * 3600 * 16000 * 4 / 2**20  # MB the three hours would take as float32
    rc_short, rss_short, wall_short = _transcribe_in_child(short, bundle, tmp_path / "short.json")
    try:
        rc, rss, wall = _transcribe_in_child(long, bundle, tmp_path / "long.json")
        size = long.stat().st_size / 2**20
    finally:
        long.unlink()  # 330 MB: not left in pytest's kept temporary directories
    print(f"\nthree hours ({size:.0f} MB wav): peak RSS {rss:.0f} MB, wall {wall:.1f} s; "
          f"five minutes: peak RSS {rss_short:.0f} MB, wall {wall_short:.1f} s; "
          f"(decoded whole: {decoded:.0f} MB)")
    assert rc == rc_short == 0
    result = json.loads((tmp_path / "long.json").read_text())
    assert result["duration"] == pytest.approx(3 * 3600, abs=0.01)
    assert len(result["segments"]) >= 360 and result["segments"][-1]["end"] == pytest.approx(3 * 3600, abs=0.01)
    assert rss < rss_short + 100, (rss, rss_short)  # what grows is the transcript, not the audio
    assert rss < decoded / 2
