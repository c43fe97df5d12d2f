"""Where the orchestration overhead goes: (c) the runtime at full depth against (b) the monolithic graph.

    python benchmarks/profile_orchestration.py [--seconds 2] [--threads 1] [--precision fp32] [--runs 200]

Runs one full-depth forward of the default model on the same features many times, once as the
runtime's 27 sessions and once as the monolithic graph composed from them, both with the
runtime's SessionOptions, with onnxruntime's profiler on. For every session run it splits the
wall time seen from Python into: kernel time (the sum of the graph's node events), onnxruntime's
per-run work outside the kernels (``model_run`` minus kernels: execution frame, allocation,
scheduling), and the Python binding plus our orchestration (Python wall minus ``model_run``).
Medians per forward, in milliseconds, as a markdown table.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
from profile_ops import BUNDLE, setup  # the sibling script (run from benchmarks/ or by path)

from i3d_edge.export.compose import compose_monolithic
from i3d_edge.runtime.sessions import session_options


def profiled_runs(path: str, threads: int, feeds_list: list[dict[str, np.ndarray]], prefix: str
                  ) -> tuple[ort.InferenceSession, list[float]]:
    """Create a profiling session, run every feed dict once; returns the session and Python walls (s)."""
    so = session_options(threads)
    so.enable_profiling = True
    so.profile_file_prefix = prefix
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    walls = []
    for feeds in feeds_list:
        t = time.perf_counter()
        sess.run(None, feeds)
        walls.append(time.perf_counter() - t)
    return sess, walls


def split(profile: str) -> list[tuple[float, float]]:
    """Per session run in the profile: (model_run seconds, kernel seconds)."""
    events = json.loads(Path(profile).read_text())
    runs = [e for e in events if e.get("name") == "model_run"]
    kernels = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    out = []
    for r in runs:
        start, end = r["ts"], r["ts"] + r["dur"]
        k = sum(e["dur"] for e in kernels if start <= e["ts"] < end)
        out.append((r["dur"] / 1e6, k / 1e6))
    return out


def main() -> None:
    args, manifest, feats, lens = setup(__doc__, seconds=2.0, runs=200)
    bundle = BUNDLE
    graphs = manifest.variant(args.precision).graphs
    warm = 10
    with tempfile.TemporaryDirectory() as tmp:
        # (c): the runtime's chain of sessions, fed exactly as the runtime feeds them
        order = ["frontend", "gate", *manifest.modules, "head"]
        sessions = {}
        for key in order:
            so = session_options(args.threads)
            so.enable_profiling = True
            so.profile_file_prefix = f"{tmp}/{key}"
            sessions[key] = ort.InferenceSession(str(manifest.verify(graphs[key])), so,
                                                 providers=["CPUExecutionProvider"])
        walls: dict[str, list[float]] = defaultdict(list)
        forward_walls = []
        for _ in range(warm + args.runs):
            t0 = time.perf_counter()
            t = time.perf_counter()
            x, x_lens = sessions["frontend"].run(None, {"features": feats, "features_lens": lens})
            walls["frontend"].append(time.perf_counter() - t)
            t = time.perf_counter()
            sessions["gate"].run(None, {"x": x, "x_lens": x_lens})
            walls["gate"].append(time.perf_counter() - t)
            for key in manifest.modules:
                feeds = {"x": x, "x_lens": x_lens} if key.endswith(".mha") else {"x": x}
                t = time.perf_counter()
                x = sessions[key].run(None, feeds)[0]
                walls[key].append(time.perf_counter() - t)
            t = time.perf_counter()
            sessions["head"].run(None, {"encoder_out": x})
            walls["head"].append(time.perf_counter() - t)
            forward_walls.append(time.perf_counter() - t0)
        split_rows = {key: split(sessions[key].end_profiling()) for key in order}
        # (b): the same graphs composed into one
        mono_path = f"{tmp}/monolithic.onnx"
        import onnx

        onnx.save(compose_monolithic(bundle, graphs, manifest.modules), mono_path)
        feeds = [{"features": feats, "features_lens": lens}] * (warm + args.runs)
        mono, mono_walls = profiled_runs(mono_path, args.threads, feeds, f"{tmp}/mono")
        mono_rows = split(mono.end_profiling())

    def per_forward(rows: dict[str, list[tuple[float, float]]], py: dict[str, list[float]]) -> dict[str, float]:
        n = args.runs
        wall = [sum(py[k][warm + i] for k in rows) for i in range(n)]
        run = [sum(rows[k][warm + i][0] for k in rows) for i in range(n)]
        kern = [sum(rows[k][warm + i][1] for k in rows) for i in range(n)]
        return {"python wall": statistics.median(wall), "model_run": statistics.median(run),
                "kernels": statistics.median(kern),
                "onnxruntime per-run work": statistics.median([r - k for r, k in zip(run, kern, strict=True)]),
                "binding + python": statistics.median([w - r for w, r in zip(wall, run, strict=True)])}

    c = per_forward(split_rows, walls)
    c["forward wall (with loop)"] = statistics.median(forward_walls[warm:])
    b = per_forward({"monolithic": mono_rows}, {"monolithic": mono_walls})
    b["forward wall (with loop)"] = b["python wall"]
    print(f"{args.seconds:g} s of features, {args.threads} thread(s), {args.precision}, median of {args.runs} "
          f"forwards; {len(order)} session runs per forward in (c)\n")
    print("| ms per forward | (b) monolithic | (c) runtime, full depth | (c) - (b) |")
    print("|---|---|---|---|")
    for k in ("forward wall (with loop)", "python wall", "model_run", "kernels", "onnxruntime per-run work",
              "binding + python"):
        print(f"| {k} | {1e3 * b[k]:.2f} | {1e3 * c[k]:.2f} | {1e3 * (c[k] - b[k]):+.2f} |")


if __name__ == "__main__":
    main()
