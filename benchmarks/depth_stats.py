"""Statistics for the depth report (``benchmarks/depth.py``): numpy only, no scipy.

- :func:`spearman`: Spearman rank correlation (average ranks for ties, i.e. Pearson on ranks)
  with a two-sided p-value from the t approximation ``t = rho sqrt((n-2)/(1-rho^2))``, df n-2
  (what ``scipy.stats.spearmanr`` reports);
- :func:`t_sf_two_sided`: two-sided Student-t tail through the regularised incomplete beta
  function (Lentz continued fraction, as in Numerical Recipes ``betacf``);
- :func:`paired_bootstrap`: percentile CI of a difference of corpus-level error rates
  ``sum(err_a)/sum(n) - sum(err_b)/sum(n)``, resampling utterances (pairs kept together).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BootstrapCI", "Correlation", "betainc", "paired_bootstrap", "rankdata", "spearman",
           "t_sf_two_sided"]


def rankdata(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the average of the ranks they span. (N,) -> (N,) float64."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    # first index of every run of equal values in sorted order
    starts = np.flatnonzero(np.concatenate(([True], sorted_v[1:] != sorted_v[:-1])))
    ends = np.concatenate((starts[1:], [v.size]))  # one past the last index of each run
    avg = (starts + ends - 1) / 2.0 + 1.0  # average 1-based rank of each run
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError("betainc: a and b must be > 0")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float, max_iter: int = 500, eps: float = 1e-15) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def t_sf_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class Correlation:
    rho: float | None  # None when either variable is constant or n < 3
    p: float | None  # two-sided, t approximation
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {"rho": self.rho, "p": self.p, "n": self.n}


def spearman(x: np.ndarray, y: np.ndarray) -> Correlation:
    """Spearman rho of two paired samples (N,), (N,); NaN pairs are dropped."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman: x and y must be 1-D arrays of the same length")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3:
        return Correlation(None, None, n)
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return Correlation(None, None, n)
    rho = max(-1.0, min(1.0, float(rx @ ry) / denom))
    if abs(rho) >= 1.0:
        return Correlation(rho, 0.0, n)
    t = rho * math.sqrt((n - 2) / (1.0 - rho * rho))
    return Correlation(rho, t_sf_two_sided(t, n - 2), n)


@dataclass(frozen=True)
class BootstrapCI:
    diff: float  # point estimate on the full sample: rate_a - rate_b
    lo: float  # percentile CI bounds
    hi: float
    resamples: int
    level: float

    def to_dict(self) -> dict[str, float | int]:
        return {"diff": self.diff, "lo": self.lo, "hi": self.hi, "resamples": self.resamples, "level": self.level}


def paired_bootstrap(err_a: np.ndarray, err_b: np.ndarray, units: np.ndarray | None = None, *,
                     resamples: int = 1000, level: float = 0.95, seed: int = 0,
                     chunk: int = 250) -> BootstrapCI:
    """Paired bootstrap of ``sum(err_a)/sum(units) - sum(err_b)/sum(units)`` over utterances.

    err_a, err_b: (N,) per-utterance errors of two systems on the same utterances (word or
    character edits; or any per-utterance quantity); units: (N,) reference words/characters
    (ones: a difference of means). Every resample draws N utterances with replacement and
    keeps each utterance's pair together.
    """
    a = np.asarray(err_a, dtype=np.float64)
    b = np.asarray(err_b, dtype=np.float64)
    u = np.ones_like(a) if units is None else np.asarray(units, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.shape != u.shape:
        raise ValueError("paired_bootstrap: err_a, err_b and units must be 1-D arrays of one length")
    n = a.size
    if n == 0 or u.sum() <= 0:
        raise ValueError("paired_bootstrap: need at least one utterance with a positive unit count")
    if not 0.0 < level < 1.0 or resamples < 1:
        raise ValueError("paired_bootstrap: level in (0, 1) and resamples >= 1 required")
    d = a - b  # (N,) paired difference per utterance
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(m, n))  # (m, N) resampled utterance indices
        den = u[idx].sum(1)  # (m,)
        stats[start: start + m] = d[idx].sum(1) / np.where(den > 0, den, np.nan)
    stats = stats[~np.isnan(stats)]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return BootstrapCI(float(d.sum() / u.sum()), float(lo), float(hi), resamples, level)
