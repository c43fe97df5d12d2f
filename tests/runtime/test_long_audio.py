"""Long audio: low-energy segmentation, absolute timestamps, streaming with bounded memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from i3d_edge.runtime import Runtime
from i3d_edge.runtime.segment import SegmentPolicy, find_cut, split_stream
from tests.conftest import speechlike

SR = 16000
POLICY = SegmentPolicy(max_seconds=30.0, search_seconds=5.0)


def write_long(path, minutes: float, sr: int = SR) -> None:
    """A long speech-like file written 30 s at a time (never held whole in memory)."""
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as fh:
        for i in range(int(minutes * 2)):
            fh.write(speechlike(30.0, sr=sr, seed=i))


def blocks_of(x: np.ndarray, size: int):
    return (x[i: i + size] for i in range(0, x.size, size))


def test_cut_lands_in_the_pause():
    x = speechlike(70.0, seed=1)
    x[int(27.0 * SR): int(27.3 * SR)] = 0.0  # a pause inside the search window [25, 30) s
    segments = list(split_stream(blocks_of(x, SR), SR, POLICY))
    assert 27.0 * SR <= segments[1].start <= 27.3 * SR


def test_find_cut_picks_the_quietest_frame():
    x = np.ones(10_000, np.float32)
    x[6400:6720] = 0.0  # frame 20 of 320-sample frames
    assert find_cut(x, 0, 10_000, 320) == 6400 + 160


NOISE = np.random.default_rng(2).standard_normal(140 * SR).astype(np.float32)  # 140 s of input to slice


@settings(max_examples=25, deadline=None)
@given(seconds=st.floats(0.1, 140.0), block=st.integers(4_000, 400_000))
def test_segments_tile_the_input_whatever_the_blocks(seconds, block):
    x = NOISE[: int(seconds * SR)]
    segments = list(split_stream(blocks_of(x, block), SR, POLICY))
    reference = list(split_stream([x], SR, POLICY))
    assert [s.start for s in segments] == [s.start for s in reference]  # block size never matters
    assert segments[0].start == 0
    for a, b in itertools.pairwise(segments):
        assert a.start + a.audio.size == b.start
    assert segments[-1].start + segments[-1].audio.size == x.size
    assert all(s.audio.size <= 30 * SR for s in segments)
    if len(segments) > 1:  # cut pieces are never shorter than the search window
        assert min(s.audio.size for s in segments) >= 5 * SR
    np.testing.assert_array_equal(np.concatenate([s.audio for s in segments]), x)


@pytest.fixture(scope="module")
def five_minutes(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "five.wav"
    write_long(path, 5.0)
    return path


def test_five_minutes_have_absolute_monotonic_timestamps(make_bundle, five_minutes):
    rt = Runtime(make_bundle("global", 2), threshold=0.3)
    t = rt.transcribe(five_minutes)
    assert t.duration == pytest.approx(300.0, abs=1e-3)
    assert 10 <= len(t.segments) <= 13
    assert t.segments[0].start == 0.0 and t.segments[-1].end == pytest.approx(t.duration)
    for a, b in itertools.pairwise(t.segments):
        assert a.end == b.start and 25.0 <= a.end - a.start <= 30.0
    assert len(t.tokens) > 100
    starts = [tok.start for tok in t.tokens]
    assert starts == sorted(starts) and all(0.0 <= tok.start < tok.end <= t.duration for tok in t.tokens)
    ends = np.array([s.end for s in t.segments])
    for tok in t.tokens:  # every token lies inside the segment it was decoded in
        seg = t.segments[int(np.searchsorted(ends, tok.start, side="right"))]
        assert seg.start <= tok.start and tok.end <= seg.end
    assert t.text == " ".join(s.text for s in t.segments if s.text)
    assert t.tokens[-1].start > 270.0  # timestamps are offset, not restarted per segment
    in_memory = rt.transcribe(sf.read(five_minutes, dtype="int16")[0], SR)
    assert (in_memory.text, in_memory.tokens) == (t.text, t.tokens)


_RSS_CHILD = """
import sys, threading
import psutil
from i3d_edge.runtime import Runtime
rt = Runtime(sys.argv[1], batch_size=4)
rt.transcribe(sys.argv[2])  # warm-up: sessions and arenas allocated
proc, done = psutil.Process(), threading.Event()
base = peak = proc.memory_info().rss
failed = []  # a sampler that died would leave peak low: its exception fails the child instead
def sample():
    global peak
    try:
        while not done.wait(0.002):
            peak = max(peak, proc.memory_info().rss)
    except BaseException as exc:
        failed.append(exc)
watcher = threading.Thread(target=sample)
watcher.start()
try:
    rt.transcribe(sys.argv[3])
finally:
    done.set()
    watcher.join()
if failed:
    raise failed[0]
print(base, max(peak, proc.memory_info().rss))
"""

def rss_growth(bundle, warmup, path) -> int:
    """Peak RSS of a fresh process while transcribing ``path``, minus its RSS before (bytes):
    RSS counts what onnxruntime allocates natively, which tracemalloc cannot see."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(bundle), str(warmup), str(path)], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    base, peak = map(int, out.stdout.split())
    return peak - base


def test_memory_is_bounded_by_the_segment_not_the_file(make_bundle, tmp_path, five_minutes):
    pytest.importorskip("psutil")
    bundle = make_bundle("global", 2)
    long_path, warmup = tmp_path / "fifteen.wav", tmp_path / "warmup.wav"
    write_long(long_path, 15.0)
    sf.write(warmup, speechlike(30.0, seed=9), SR)
    short, long = rss_growth(bundle, warmup, five_minutes), rss_growth(bundle, warmup, long_path)
    whole = 15 * 60 * SR * 4  # the fifteen minutes decoded as float32: 57.6 MB
    assert long < short + whole / 4, (short, long)  # three times the audio, about the same memory
    assert long < 1.5 * whole, (long, whole)  # measured: about 50 MB (4 x 30 s segments in flight)
