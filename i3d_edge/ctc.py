"""CTC greedy decoding with token timestamps (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TokenSpan", "greedy_decode", "runs"]


@dataclass(frozen=True)
class TokenSpan:
    """One emitted token: its id and the encoder frames [start, end) it spans."""

    id: int  # index into the token table, never the blank (0)
    start: int  # first encoder frame of the token's run
    end: int  # one past the last frame of the run


def greedy_decode(log_probs: np.ndarray, length: int | None = None) -> list[TokenSpan]:
    """Best-path CTC decoding: argmax per frame, collapse repeats, drop blanks.

    log_probs: (T, V); only the first ``length`` frames are read (all when None).
    """
    if length is None:
        length = log_probs.shape[0]
    best = np.asarray(log_probs[:length]).argmax(axis=-1)  # (T,)
    return [span for span in runs(best) if span.id != 0]


def runs(path: np.ndarray) -> list[TokenSpan]:
    """Frame-level token ids (T,) -> one span per run of equal ids, blanks included."""
    if path.size == 0:
        return []
    change = np.flatnonzero(np.diff(path)) + 1  # first frame of every run but the first
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [path.size]))
    return [TokenSpan(i, s, e) for i, s, e in zip(path[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)]
