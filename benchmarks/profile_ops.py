"""Where the time goes: per-operator profile of (a) PyTorch eager and (b) the ONNX monolithic graph.

    python benchmarks/profile_ops.py [--seconds 10] [--threads 1] [--precision fp32|int8]

Both run the default model at full depth on the same features; the output is a markdown table
of operator classes (matrix products, attention softmax/masking, layer norms, convolutions,
the rest) with their share of the median forward time. Used for the findings in RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from i3d_edge.export.compose import compose_monolithic
from i3d_edge.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {  # operator name fragments -> class
    "matmul": "matrix products", "gemm": "matrix products", "linear": "matrix products", "addmm": "matrix products",
    "bmm": "matrix products", "mm": "matrix products",
    "conv": "convolution",
    "softmax": "softmax + mask", "masked_fill": "softmax + mask", "where": "softmax + mask",
    "layernorm": "layer norm", "layer_norm": "layer norm", "native_layer_norm": "layer norm",
    "quantize": "int8 (de)quantisation", "dynamicquantize": "int8 (de)quantisation",
}


def classify(op: str) -> str:
    name = op.lower().replace("aten::", "")
    for frag, cls in CLASSES.items():
        if frag in name:
            return cls
    return "other (elementwise, reshapes, ...)"


BUNDLE = ROOT / "i3d_edge" / "assets" / "default"


def setup(doc: str | None, seconds: float, runs: int) -> tuple[argparse.Namespace, Any, np.ndarray, np.ndarray]:
    """The profiling scripts' common arguments, the default model's manifest and one batch of
    random features: (args, manifest, features (1, T, F), features_lens (1,))."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=seconds)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--runs", type=int, default=runs)
    args = ap.parse_args()
    manifest = load_manifest(BUNDLE)
    frames = int(args.seconds * 100)
    feats = np.random.default_rng(0).standard_normal((1, frames, manifest.model_config.n_mels)).astype(np.float32)
    return args, manifest, feats, np.array([frames], dtype=np.int64)


def main() -> None:
    args, manifest, feats, lens = setup(__doc__, seconds=10.0, runs=20)
    bundle = BUNDLE
    rows: dict[str, dict[str, float]] = {}

    import onnxruntime as ort

    graphs = manifest.variants[args.precision].graphs
    model = compose_monolithic(bundle, graphs, manifest.modules)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mono.onnx"
        path.write_bytes(model.SerializeToString())
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for _ in range(3):
            sess.run(None, dict(zip(names, (feats, lens), strict=True)))
        walls = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            sess.run(None, dict(zip(names, (feats, lens), strict=True)))
            walls.append(time.perf_counter() - t0)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_class: collections.Counter[str] = collections.Counter()
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            per_class[classify(ev["args"]["op_name"])] += ev["dur"] / 1e3  # ms
    total = sum(per_class.values())
    rows["(b) ONNX monolithic"] = {k: v / total for k, v in per_class.items()} | {"_wall": float(np.median(walls))}

    import torch

    from i3d_edge.models.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    net = load_checkpoint(ROOT / "recipes" / "default_model" / "ckpt.pt").build_model().eval()
    x, xl = torch.from_numpy(feats), torch.from_numpy(lens)
    with torch.inference_mode():
        for _ in range(3):
            net(x, xl, full_depth=True)
        walls = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            net(x, xl, full_depth=True)
            walls.append(time.perf_counter() - t0)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.runs):
                net(x, xl, full_depth=True)
    per_class = collections.Counter()
    for evt in prof.key_averages():
        if evt.key.startswith("aten::") and evt.key not in ("aten::linear",):  # linear = addmm + view
            per_class[classify(evt.key)] += evt.self_cpu_time_total / 1e3
    total = sum(per_class.values())
    rows["(a) PyTorch eager"] = {k: v / total for k, v in per_class.items()} | {"_wall": float(np.median(walls))}

    classes = sorted({k for r in rows.values() for k in r if not k.startswith("_")})
    print(f"{args.seconds:g} s of features, {args.threads} thread(s), {args.precision}, median of {args.runs} runs\n")
    print("| | median forward | " + " | ".join(classes) + " |")
    print("|---|---|" + "---|" * len(classes))
    for name, r in rows.items():
        cells = [f"{100 * r.get(c, 0.0):.0f}% ({1e3 * r['_wall'] * r.get(c, 0.0):.1f} ms)" for c in classes]
        print(f"| {name} | {1e3 * r['_wall']:.1f} ms | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
