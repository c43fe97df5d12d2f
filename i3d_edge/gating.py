"""Gate decisions in numpy, mirroring ``I3DModel`` in eval mode (runtime and export verify)."""

from __future__ import annotations

import numpy as np

__all__ = ["local_budget", "select_gates"]


def select_gates(probs: np.ndarray, threshold: float, max_modules: int | None = None) -> np.ndarray:
    """(B, G) probabilities -> (B, G) bool: ``p > threshold``, then keep the ``max_modules``
    most probable per row (ties towards the earlier module)."""
    on = probs > threshold
    if max_modules is not None and max_modules < probs.shape[1]:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :max_modules]
        keep = np.zeros_like(on)
        np.put_along_axis(keep, order, True, axis=1)
        on &= keep
    return on


def local_budget(on: np.ndarray, executed: np.ndarray, max_modules: int | None) -> np.ndarray:
    """Apply a greedy compute budget to one layer's (B, 2) local decisions, in execution order:
    a module runs only while fewer than ``max_modules`` have run for that row. ``executed`` is
    updated in place."""
    if max_modules is None:
        executed += on.sum(axis=1)
        return on
    out = on.copy()
    for j in range(on.shape[1]):
        out[:, j] &= executed < max_modules
        executed += out[:, j]
    return out
