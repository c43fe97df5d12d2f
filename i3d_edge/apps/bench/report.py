"""Markdown of benchmark reports (one or more models measured in one run on one machine)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...module_kinds import MODULE_KINDS

__all__ = ["MB", "VARIANTS", "duration_label", "render_markdown"]

MB = 1024 * 1024

VARIANTS: dict[str, str] = {
    "a": "(a) PyTorch eager, full depth",
    "b": "(b) ONNX monolithic",
    "c": "(c) runtime, full depth",
    "d": "(d) runtime, default threshold",
    "b_int8": "(b) int8",
    "c_int8": "(c) int8",
    "d_int8": "(d) int8",
}


def _kinds(row: Mapping[str, Any], suffix: str = "") -> list[str]:
    """The module kinds a measurement row has a ``KIND + suffix`` entry for (mha, ffn ...), in its order."""
    names = (key.removesuffix(suffix) for key in row if key.endswith(suffix))
    return [name for name in names if name in MODULE_KINDS]


def _split(row: Mapping[str, Any], total: int | None = None) -> str:
    """Executed modules of a sweep row (``total``, or their sum) and their split by kind: ``12 (6 + 6)``."""
    counts = [row[k] for k in _kinds(row)]
    return f"{sum(counts) if total is None else total} ({' + '.join(map(str, counts))})"


def duration_label(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _ms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}x"


def _header(*names: str) -> list[str]:
    """A Markdown table's header and separator lines."""
    return [_cells(*names), "|---" * len(names) + "|"]


def _cells(*values: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(map(str, values)) + " |"


def _result(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "**MISS**")


def _environment_md(env: Mapping[str, Any], command: str | None, cfg: Mapping[str, Any]) -> list[str]:
    v = env["versions"]
    cores = f"{env['logical_cores']} logical"
    if env.get("physical_cores"):
        cores += f" / {env['physical_cores']} physical"
    mem = f", {env['memory_bytes'] / 2**30:.0f} GiB RAM" if env.get("memory_bytes") else ""
    load = env.get("load_average_start")
    load_end = env.get("load_average_end")
    lines = [
        f"- **Command**: `{command or 'i3d-edge bench'}`",
        f"- **Date**: {env['date_utc']}; bench wall time {env.get('bench_seconds', 0) / 60:.1f} min",
        f"- **Machine**: {env['cpu']} ({cores} cores, {env.get('usable_cores')} usable{mem}); "
        f"flags: {', '.join(env.get('cpu_flags') or []) or '-'}; {env['os']}",
        f"- **Load average** (1/5/15 min) at start: {', '.join(f'{x:.2f}' for x in load) if load else '-'}; "
        f"at end: {', '.join(f'{x:.2f}' for x in load_end) if load_end else '-'}",
        f"- **Versions**: i3d-edge {v['i3d-edge']} (git {env.get('git') or '-'}), onnxruntime {v['onnxruntime']}, "
        f"numpy {v['numpy']}, torch {v['torch']}, onnx {v['onnx']}, Python {env['python']}",
        f"- **Threads**: onnxruntime {env['threads']['onnxruntime_intra_op']} intra-op / 1 inter-op per session, "
        f"torch the same (per section); {env['threads']['policy']}",
        f"- **Method**: interleaved rounds, every variant once per round in a shuffled order, after one "
        f"untimed warm-up round (none for the long file); {cfg['repeats']} rounds per utterance length, "
        f"{cfg['long_repeats']} for the long file; times are medians, ratios are medians of per-round ratios.",
    ]
    return lines


def _model_md(r: Mapping[str, Any]) -> list[str]:
    m, mc = r["model"], r["model"]["config"]
    out = [f"## {m['name']}", "",
           f"{mc['n_layers']} layers ({2 * mc['n_layers']} gated modules), d_model {mc['d_model']}, "
           f"{mc['n_heads']} heads, d_ff {mc['d_ff']}, {m['predictor']} gate predictor, "
           f"{m['params'] / 1e6:.2f} M parameters; {m['origin']}. Default threshold {m['threshold']:g}. "
           f"PyTorch eager weights: {m['eager_weights']}. Test audio: {m['audio']}.", ""]
    out += [f"- note: {n}" for n in m["notes"]]
    if m["notes"]:
        out.append("")
    # ---- targets (rows added by the caller, e.g. benchmarks/targets.py)
    if r.get("targets"):
        out += ["### Targets", "", "| target | condition | value | limit | result |", "|---|---|---|---|---|"]
    for t in r.get("targets", []):
        unit = {"rss": " MB", "cold_start": " s"}.get(t["target"], "")
        val = "-" if t["value"] is None else f"{t['value']:.2f}{unit or 'x'}"
        out.append(f"| {t['target']} | {t['condition']} | {val} | {t['op']} {t['limit']:g}{unit or 'x'} "
                   f"| {_result(t['pass'])} |")
    # ---- RTF
    rows = [*r["utterances"], *([r["long_file"]] if r.get("long_file") else [])]
    out += ["", "### Real-time factor (median processing time / audio duration)", "",
            "Utterances: encoder forward on precomputed features (batch 1). Long file: end to end through "
            "`Runtime.transcribe` (stream, cut into <= 30 s segments, features, batches, forward, decode), for "
            "(a)/(b) with their forward swapped in. `[x%]`: executed fraction of the gated modules (median "
            "over segments).", "",
            "| audio | " + " | ".join(VARIANTS.values()) + " |", "|---" * (len(VARIANTS) + 1) + "|"]
    for row in rows:
        cells = []
        for k in VARIANTS:
            v = row["variants"][k]
            frac = f" [{100 * v['executed_fraction']:.0f}%]" if k.startswith("d") and "executed_fraction" in v else ""
            cells.append(f"{v['rtf']:.4f} ({_ms(v['median_s'])}){frac}")
        out.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    ratios = {"a/b": "(a)/(b)", "a/c": "(a)/(c)", "a/c_int8": "(a)/(c) int8", "c/b": "(c)/(b)",
              "c_int8/b_int8": "(c)/(b) int8", "b/b_int8": "(b) fp32/int8", "c/c_int8": "(c) fp32/int8",
              "d/d_int8": "(d) fp32/int8", "c/d": "(c)/(d)"}
    out += ["", *_header("audio", *ratios.values())]
    for row in rows:
        out.append(_cells(row["label"], *(_x(row["ratios"][k], 3 if k.startswith("c") and "/b" in k else 2)
                                          for k in ratios)))
    # ---- sweep
    sw = r["sweep"]
    out += ["", f"### Encoder time against executed fraction ({sw['seconds']:g} s utterance, fp32)", "",
            "`threshold=0` plus `max_modules=round(f x 2N)` runs exactly that many modules (the most probable "
            "ones). Encoder time = gate predictor + modules (`ForwardOutput.timings`); forward adds frontend "
            "and head.", "",
            *_header("f", f"modules ({' + '.join(MODULE_KINDS[k].label for k in _kinds(sw['full']))})", "encoder",
                     "/ full depth", "forward", "/ full depth")]
    full = sw["full"]
    out.append(_cells("full depth", _split(full), _ms(full["encoder_median_s"]), 1, _ms(full["forward_median_s"]), 1))
    out += [_cells(f"{p['fraction']:g}", _split(p, p["max_modules"]), _ms(p["encoder_median_s"]),
                   f"{p['encoder_ratio']:.3f}", _ms(p["forward_median_s"]), f"{p['forward_ratio']:.3f}")
            for p in sw["points"]]
    # ---- per graph
    g = r["graphs"]
    kinds = _kinds(g["fp32"], "_mean_s")
    out += ["", f"### Time per graph ({g['seconds']:g} s utterance, batch 1, median of direct session runs)", "",
            "| | frontend | gate | " + "".join(f"{MODULE_KINDS[k].label} (mean) | " for k in kinds)
            + "head | all graphs, full depth | (b) monolithic "
            "| (c) runtime | split cost = sum - (b) | orchestration = (c) - sum | session creation |",
            "|---" * (10 + len(kinds)) + "|"]
    for p in ("fp32", "int8"):
        x = g[p]
        out.append(f"| {p} | {_ms(x['frontend_s'])} | {_ms(x['gate_s'])} | "
                   + "".join(f"{_ms(x[k + '_mean_s'])} | " for k in kinds)
                   + f"{_ms(x['head_s'])} | {_ms(x['graphs_sum_s'])} | "
                   f"{_ms(x['monolithic_s'])} | {_ms(x['runtime_full_s'])} | {_ms(x['split_cost_s'])} | "
                   f"{_ms(x['orchestration_s'])} | {_ms(x['session_create_s'])} |")
    st = g["fp32"]["runtime_stages_s"]
    out += ["", "Runtime stages of (c) fp32 (`ForwardOutput.timings`): "
            + ", ".join(f"{k} {_ms(v)}" for k, v in st.items()) + "."]
    # ---- memory, cold start, sizes
    if r.get("rss"):
        out += ["", f"### Peak RSS (fresh process, `Runtime(...)` + `transcribe` of the "
                f"{duration_label(r['rss']['audio_seconds'])} file)", "",
                "| variant | after imports | after `Runtime()` | peak |", "|---|---|---|---|"]
        for k, v in r["rss"]["runs"].items():
            out.append(f"| {k} | {v['peak_after_import'] / MB:.0f} MB | {v['peak_after_load'] / MB:.0f} MB | "
                       f"{v['peak'] / MB:.0f} MB |")
    if r.get("cold_start"):
        out += ["", f"### Cold start (fresh process: `import i3d_edge`, `Runtime()`, `transcribe(2 s)`; median of "
                f"{r['config']['cold_runs']}, page cache warm)", "",
                "| variant | import | `Runtime()` | first transcript | total | process wall (with interpreter) |",
                "|---|---|---|---|---|---|"]
        for k, v in r["cold_start"]["median"].items():
            out.append(f"| {k} | {_ms(v['import_s'])} | {_ms(v['runtime_s'])} | {_ms(v['first_result_s'])} | "
                       f"{_ms(v['total_s'])} | {_ms(v['process_wall_s'])} |")
    sz = r["sizes"]
    out += ["", "### Bundle size", "", "| variant | runtime graphs | monolithic graph |", "|---|---|---|"]
    for p in ("fp32", "int8"):
        if p in sz:
            mono = sz[p]["monolithic_bytes"]
            out.append(f"| {p} | {sz[p]['runtime_bytes'] / MB:.2f} MB ({sz[p]['runtime_graphs']} graphs) | "
                       f"{'-' if mono is None else f'{mono / MB:.2f} MB'} |")
    out.append(f"| fp32 / int8 | {_x(sz.get('ratio_runtime'))} | {_x(sz.get('ratio_monolithic'))} |")
    return out


def render_markdown(reports: Sequence[Mapping[str, Any]], command: str | None = None,
                    title: str = "i3d-edge benchmarks") -> str:
    """One markdown document for one or more model reports (same run, same machine)."""
    if not reports:
        return f"# {title}\n\n(no results)\n"
    out = [f"# {title}", ""]
    first = reports[0]
    env = dict(first["environment"])
    env["load_average_end"] = reports[-1]["environment"].get("load_average_end")
    env["bench_seconds"] = sum(r["environment"].get("bench_seconds", 0.0) for r in reports)
    counts = sorted({r["environment"]["threads"]["onnxruntime_intra_op"] for r in reports})
    env["threads"] = {**env["threads"], "onnxruntime_intra_op": " and ".join(map(str, counts))}
    out += _environment_md(env, command, first["config"])
    if first["config"].get("quick"):
        out += ["", "> **Quick run** (`--quick`): few repeats and a short long file; for development, not for "
                "quoting."]
    out.append("")
    checks = [(r["model"]["name"], t) for r in reports for t in r.get("targets", [])]
    misses = [f"{name}: {t['target']} ({t['condition']})" for name, t in checks if t["pass"] is False]
    if checks:
        out += [f"**Summary**: {sum(t['pass'] is True for _, t in checks)} of "
                f"{sum(t['pass'] is not None for _, t in checks)} target checks pass."
                + (" Missed: " + "; ".join(misses) + "." if misses else ""), ""]
    for r in reports:
        out += _model_md(r)
        out.append("")
    return "\n".join(out).rstrip() + "\n"

