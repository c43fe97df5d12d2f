"""Interleaved timing rounds and their statistics (medians, quartiles, paired ratios)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any

import numpy as np

__all__ = ["Stages", "interleaved", "iqr", "median", "paired_ratio", "summary"]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def iqr(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v
    q = np.percentile(np.asarray(values), [25, 75])
    return float(q[0]), float(q[1])


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios num[i] / den[i] (both measured in the same round)."""
    return median([n / d for n, d in zip(num, den, strict=True) if d > 0])


Stages = Mapping[str, float] | None


def interleaved(fns: Mapping[str, Callable[[], Stages]], repeats: int, *, warmup: int = 1, seed: int = 0
                ) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """Run every function once per round, ``warmup + repeats`` rounds; the warm-up round runs
    them in the given order, every timed round in a fresh (seeded) shuffled order, so that no
    function always follows the same one (a torch worker pool still spinning, a cache state).
    Returns wall times and the stage timings the functions return (e.g.
    ``ForwardOutput.timings``), timed rounds only, indexed by round."""
    names = list(fns)
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names if r < warmup else [names[i] for i in rng.permutation(len(names))]
        for name in order:
            t = perf_counter()
            extra = fns[name]()
            elapsed = perf_counter() - t
            if r >= warmup:
                times[name].append(elapsed)
                stages[name].append(dict(extra or {}))
    return times, stages


def summary(times: Sequence[float], seconds: float | None = None) -> dict[str, Any]:
    lo, hi = iqr(times)
    out: dict[str, Any] = {"median_s": median(times), "q1_s": lo, "q3_s": hi, "n": len(times),
                           "times_s": [round(t, 6) for t in times]}
    if seconds:
        out["rtf"] = out["median_s"] / seconds
    return out
