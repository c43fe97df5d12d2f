"""The project's speed and memory targets (issue #6) and their verdicts on ``run_bench`` reports.

Development-only: the package measures (``i3d_edge.apps.bench``), this file judges. Used by
``benchmarks/run.py`` (RESULTS.md) and tested in ``tests/apps/test_bench_verdicts.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from i3d_edge.apps.bench.report import MB, duration_label
from i3d_edge.module_kinds import MODULE_KINDS

__all__ = ["TARGETS", "check", "targets", "verdict"]

# The targets of issue #6 (value must be <= or >= the limit).
TARGETS: dict[str, tuple[str, float, str]] = {
    "orchestration": ("<=", 1.05, "(c) runtime full depth / (b) monolithic, wall time"),
    "depth_scaling": ("<=", 0.05, "encoder time at executed fraction f / full depth, limit f + 0.05"),
    "vs_eager": (">=", 2.0, "(a) PyTorch eager / ONNX, wall time"),
    "int8_speed": (">=", 1.5, "fp32 / int8 wall time"),
    "int8_size": (">=", 3.5, "fp32 / int8 bundle bytes"),
    "rss": ("<=", 200.0, "peak RSS (MB) of a fresh process: Runtime + transcribe of the long file"),
    "cold_start": ("<=", 1.0, "seconds from `import i3d_edge` to the first transcript (2 s audio)"),
}


def check(kind: str, condition: str, value: float | None, limit: float | None = None) -> dict[str, Any]:
    op, default, what = TARGETS[kind]
    limit = default if limit is None else limit
    ok = None if value is None or not np.isfinite(value) else (value <= limit if op == "<=" else value >= limit)
    return {"target": kind, "what": what, "condition": condition, "value": value, "op": op, "limit": limit,
            "pass": ok}


def verdict(kind: str, value: float | None, limit: float | None = None) -> bool | None:
    """PASS (True), MISS (False) or n/a (None, no finite value) of ``value`` against target ``kind``
    (``TARGETS``; ``limit`` replaces its default): the comparison behind every row of RESULTS.md."""
    result: bool | None = check(kind, "", value, limit)["pass"]
    return result


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The target rows of one ``run_bench`` report (each with its value, limit and verdict)."""
    rows = []
    audio_rows = [*r["utterances"], *([r["long_file"]] if r.get("long_file") else [])]
    for row in audio_rows:
        rows.append(check("orchestration", f"fp32, {row['label']}", row["ratios"]["c/b"]))
        rows.append(check("orchestration", f"int8, {row['label']}", row["ratios"]["c_int8/b_int8"]))
    for p in r["sweep"]["points"]:
        mix = " + ".join(f"{p[kind]} {spec.label}" for kind, spec in MODULE_KINDS.items() if kind in p)
        rows.append(check("depth_scaling", f"f = {p['fraction']:g} ({mix}), "
                                            f"{r['sweep']['seconds']:g} s", p["encoder_ratio"], p["fraction"] + 0.05))
    for row in audio_rows:
        rows.append(check("vs_eager", f"(b), {row['label']}", row["ratios"]["a/b"]))
        rows.append(check("vs_eager", f"(c), {row['label']}", row["ratios"]["a/c"]))
    for row in audio_rows:
        rows.append(check("int8_speed", f"(b), {row['label']}", row["ratios"]["b/b_int8"]))
        rows.append(check("int8_speed", f"(c), {row['label']}", row["ratios"]["c/c_int8"]))
    sizes = r["sizes"]
    rows.append(check("int8_size", "runtime graphs", sizes.get("ratio_runtime")))
    rows.append(check("int8_size", "monolithic graph", sizes.get("ratio_monolithic")))
    if r.get("rss"):
        peak = r["rss"]["runs"]["fp32"]["peak"] / MB
        rows.append(check("rss", f"fp32, {duration_label(r['rss']['audio_seconds'])} file", peak))
        if "fp32-lm" in r["rss"]["runs"]:
            peak = r["rss"]["runs"]["fp32-lm"]["peak"] / MB
            rows.append(check("rss", f"fp32 + LM decoding, {duration_label(r['rss']['audio_seconds'])} file", peak))
    if r.get("cold_start"):
        for key, what in (("fp32", "fp32, median"), ("fp32-lm", "fp32 + LM decoding, median")):
            if key in r["cold_start"]["median"]:
                rows.append(check("cold_start", what, r["cold_start"]["median"][key]["total_s"]))
    return rows
