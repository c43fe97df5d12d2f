"""Cutting long audio into segments at low-energy points, from a stream of blocks.

A segment ends at the quietest frame (lowest mean energy) of a search window just before the
length limit, so cuts fall in pauses rather than in words. The splitter holds at most one
limit plus one window plus one input block of samples, whatever the length of the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["AudioSegment", "SegmentPolicy", "find_cut", "split_stream"]


@dataclass(frozen=True)
class SegmentPolicy:
    """Where long audio is cut."""

    max_seconds: float = 30.0  # no segment is longer than this
    search_seconds: float = 5.0  # the cut is searched in this window before the limit
    frame_seconds: float = 0.02  # energy is measured on frames of this length


@dataclass(frozen=True)
class AudioSegment:
    """A piece of the input and where it starts."""

    start: int  # offset of the first sample in the whole input (samples)
    audio: np.ndarray  # (n,) float32 mono


def find_cut(audio: np.ndarray, lo: int, hi: int, frame: int) -> int:
    """Sample index in [lo, hi) at the centre of the lowest-energy ``frame``-long frame."""
    n = max(1, (hi - lo) // frame)
    window = audio[lo: lo + n * frame].reshape(n, -1)  # (n, frame)
    energy = np.einsum("ij,ij->i", window, window)  # (n,) sum of squares per frame
    return lo + int(np.argmin(energy)) * window.shape[1] + window.shape[1] // 2


def split_stream(blocks: Iterable[np.ndarray], sample_rate: int, policy: SegmentPolicy = SegmentPolicy()
                 ) -> Iterator[AudioSegment]:
    """Segments of at most ``policy.max_seconds`` from (n,) float32 blocks.

    Audio up to the limit is one segment. Longer audio is cut in the search window before the
    limit, but only once a limit plus a window are buffered, so a piece left at the end is at
    least a window long; a final piece longer than the limit is split near its middle.
    """
    limit = int(policy.max_seconds * sample_rate)
    search = int(policy.search_seconds * sample_rate)
    frame = max(1, int(policy.frame_seconds * sample_rate))
    buffer = np.zeros(0, dtype=np.float32)
    start = 0
    for block in blocks:
        buffer = np.concatenate((buffer, block)) if buffer.size else block
        while buffer.shape[0] >= limit + search:
            cut = find_cut(buffer, limit - search, limit, frame)
            yield AudioSegment(start, buffer[:cut])
            start += cut
            buffer = buffer[cut:]
    if buffer.shape[0] > limit:  # limit < n < limit + search: two pieces of about half
        half = buffer.shape[0] // 2
        cut = find_cut(buffer, half - search // 2, half + search // 2, frame)
        yield AudioSegment(start, buffer[:cut])
        start += cut
        buffer = buffer[cut:]
    if buffer.shape[0]:
        yield AudioSegment(start, buffer)
