"""Where the frontend time of an imported waveform bundle goes: onnxruntime's profiler on the
frontend graph (fp32 and int8 variants), 10 s of speech-like audio, time per operator type.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_profile.py BUNDLE [--threads 2] [--runs 3]

BUNDLE: e.g. the bundle that ``import_bench.py --work DIR`` leaves in DIR/bundle.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import speechlike


def profile(bundle: Path, precision: str, threads: int, runs: int) -> dict[str, float]:
    """Operator type -> median milliseconds per frontend run."""
    import onnxruntime as ort

    from i3d_edge.features import extract_features
    from i3d_edge.manifest import load_manifest
    from i3d_edge.runtime.sessions import session_options

    manifest = load_manifest(bundle)
    feats = extract_features(speechlike(10.0, seed=3), manifest.feature_config)[None]  # (1, N, 1)
    lens = np.array([feats.shape[1]], dtype=np.int64)  # (1,)
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "frontend")
        sess = ort.InferenceSession(str(bundle / manifest.variant(precision).graphs["frontend"]), so,
                                    providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):  # the first run warms up
            sess.run(None, {"features": feats, "features_lens": lens})
        events = json.loads(Path(sess.end_profiling()).read_text())
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")  # one per run
    per_run: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(windows))
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            run = next(i for i, (a, b) in enumerate(windows) if a <= e["ts"] <= b)
            per_run[e["args"]["op_name"]][run] += e["dur"] / 1e3
    return {op: float(np.median(v[1:])) for op, v in sorted(per_run.items(), key=lambda kv: -sum(kv[1]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for precision in ("fp32", "int8"):
        ops = profile(args.bundle, precision, args.threads, args.runs)
        total = sum(ops.values())
        print(f"{precision}: frontend {total:.0f} ms per 10 s run (sum of kernel times)")
        for op, ms in ops.items():
            if ms >= 0.01 * total:
                print(f"  {op:24s} {ms:7.0f} ms  {100 * ms / total:4.0f}%")


if __name__ == "__main__":
    main()
