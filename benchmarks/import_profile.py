"""Where the time of an imported waveform bundle goes, and which onnxruntime int8 options help.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_profile.py BUNDLE [--threads 2] [--runs 3]
    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_profile.py BUNDLE --forward [--json F]
    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_profile.py BUNDLE --options [--json F]
    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_profile.py --kernels [--json F]

* default: onnxruntime's profiler on the frontend graph (fp32 and int8 variants), 10 s of
  speech-like audio, time per operator type.
* ``--forward``: the same profiler on every graph of a full-depth forward (frontend, the 24
  modules, head; the sessions chained by hand, as the runtime does), per operator type, fp32
  against int8: which operators bound the int8 forward.
* ``--options``: the frontend and one encoder layer (``layer00.mha`` + ``layer00.ffn``) of BUNDLE's
  fp32 graphs in several int8 forms (dynamic MatMul quantisation as exported; without
  ``reduce_range``; per channel; uint8 weights; static QDQ calibrated on 3 clips) and session
  settings (threads, spinning), timed interleaved against fp32 at 10 s: medians of per-round ratios
  and the relative error of each form's output.
* ``--kernels``: the int8 kernel ceiling of this CPU: one MatMul of each shape that dominates a
  wav2vec2-base forward (an FFN's (500 x 768) @ (768 x 3072); the second conv layer's unfolded
  (16000 x 1536) @ (1536 x 512)), fp32 against MatMulInteger, dynamic and static int8.

BUNDLE: e.g. the bundle that ``import_bench.py --work DIR`` leaves in DIR/bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import interleaved, machine, paired, speechlike

SECONDS = 10.0


def _features(bundle: Path, seconds: float = SECONDS, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    from i3d_edge.features import extract_features
    from i3d_edge.manifest import load_manifest

    feats = extract_features(speechlike(seconds, seed=seed), load_manifest(bundle).feature_config)[None]  # (1, N, 1)
    return feats, np.array([feats.shape[1]], dtype=np.int64)  # (1,)


def _options(threads: int, profile_prefix: str | None = None, **entries: str) -> Any:
    from i3d_edge.runtime.sessions import session_options

    so = session_options(threads)
    for key, value in entries.items():
        so.add_session_config_entry(key.replace("__", "."), value)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def _session(path: Path, so: Any) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _op_times(events: list[dict[str, Any]], runs: int) -> dict[str, list[float]]:
    """Operator type -> milliseconds of kernel time in each model_run of a session's profile."""
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")
    per_run: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(windows))
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            run = next(i for i, (a, b) in enumerate(windows) if a <= e["ts"] <= b)
            per_run[e["args"]["op_name"]][run] += e["dur"] / 1e3
    return dict(per_run)


def profile(bundle: Path, precision: str, threads: int, runs: int) -> dict[str, float]:
    """Frontend graph: operator type -> median milliseconds per run."""
    from i3d_edge.manifest import load_manifest

    feats, lens = _features(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        sess = _session(bundle / load_manifest(bundle).variant(precision).graphs["frontend"],
                        _options(threads, str(Path(tmp) / "frontend")))
        for _ in range(runs + 1):  # the first run warms up
            sess.run(None, {"features": feats, "features_lens": lens})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_run = _op_times(events, runs)
    return {op: float(np.median(v[1:])) for op, v in sorted(per_run.items(), key=lambda kv: -sum(kv[1]))}


def profile_forward(bundle: Path, precision: str, threads: int, runs: int) -> dict[str, dict[str, float]]:
    """A full-depth forward graph by graph (frontend -> every module -> head), profiled: stage
    (frontend, modules, head) -> operator type -> median milliseconds per forward."""
    from i3d_edge.manifest import GRAPH_IO, load_manifest, role_of

    manifest = load_manifest(bundle)
    graphs = manifest.variant(precision).graphs
    feats, lens = _features(bundle)
    keys = ["frontend", *manifest.modules, "head"]
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {k: _session(bundle / graphs[k], _options(threads, str(Path(tmp) / k.replace(".", "_"))))
                    for k in keys}
        for _ in range(runs + 1):
            x, x_lens = sessions["frontend"].run(["x", "x_lens"], {"features": feats, "features_lens": lens})
            for k in manifest.modules:
                inputs = GRAPH_IO[role_of(k)][0]
                feed = {"x": x, "x_lens": x_lens}
                x = sessions[k].run(["y"], {name: feed[name] for name in inputs})[0]  # (1, T', D)
            sessions["head"].run(["log_probs"], {"encoder_out": x})
        out: dict[str, dict[str, float]] = {}
        for k, sess in sessions.items():
            stage = "frontend" if k == "frontend" else "head" if k == "head" else "modules"
            for op, v in _op_times(json.loads(Path(sess.end_profiling()).read_text()), runs).items():
                out.setdefault(stage, {}).setdefault(op, 0.0)
                out[stage][op] += float(np.median(v[1:]))
    return out


def _quantised(src: Path, dst: Path, form: str, calibration: list[dict[str, np.ndarray]]) -> Path:
    """``src`` (an fp32 graph) in one int8 form -> ``dst``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    ops = ["MatMul", "Gemm"]
    if form == "dynamic":  # as exported (i3d_edge.export.quantize.INT8)
        quantize_dynamic(src, dst, op_types_to_quantize=ops, reduce_range=True, weight_type=QuantType.QInt8)
    elif form == "dynamic, no reduce_range":
        quantize_dynamic(src, dst, op_types_to_quantize=ops, reduce_range=False, weight_type=QuantType.QInt8)
    elif form == "dynamic, per channel":
        quantize_dynamic(src, dst, op_types_to_quantize=ops, reduce_range=True, per_channel=True,
                         weight_type=QuantType.QInt8)
    elif form == "dynamic, uint8 weights":
        quantize_dynamic(src, dst, op_types_to_quantize=ops, weight_type=QuantType.QUInt8)
    elif form.startswith("static QDQ"):

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter(calibration)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.items, None)

        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=[*ops, "Conv"],
                        per_channel="per channel" in form, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    else:
        raise ValueError(form)
    return dst


FORMS = ("dynamic", "dynamic, no reduce_range", "dynamic, per channel", "dynamic, uint8 weights",
         "static QDQ, per tensor", "static QDQ, per channel")


def options(bundle: Path, threads: int, runs: int) -> dict[str, Any]:
    """The frontend and layer 0 (mha + ffn) of the fp32 variant in each int8 form and with session
    settings; interleaved against fp32 at 10 s."""
    import onnxruntime as ort

    from i3d_edge.export._util import quiet
    from i3d_edge.manifest import load_manifest

    manifest = load_manifest(bundle)
    fp32 = manifest.variant("fp32").graphs
    feats, lens = _features(bundle)
    clips = [_features(bundle, s, seed) for s, seed in ((3.0, 21), (5.0, 22), (2.0, 23))]
    ref_front = _session(bundle / fp32["frontend"], _options(threads))
    x, x_lens = ref_front.run(["x", "x_lens"], {"features": feats, "features_lens": lens})  # (1, T', D), (1,)
    calib: dict[str, list[dict[str, np.ndarray]]] = {"frontend": [], "layer00.mha": [], "layer00.ffn": []}
    for f, fl in clips:
        cx, cl = ref_front.run(["x", "x_lens"], {"features": f, "features_lens": fl})
        calib["frontend"].append({"features": f, "features_lens": fl})
        calib["layer00.mha"].append({"x": cx, "x_lens": cl})
        calib["layer00.ffn"].append({"x": cx})
    inputs = {"frontend": {"features": feats, "features_lens": lens}, "layer00.mha": {"x": x, "x_lens": x_lens},
              "layer00.ffn": {"x": x}}
    outputs = {"frontend": "x", "layer00.mha": "y", "layer00.ffn": "y"}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in ("frontend", "layer00.ffn", "layer00.mha"):
            src = bundle / fp32[key]
            paths = {"fp32": src}
            for form in FORMS:
                try:
                    with quiet():
                        paths[form] = _quantised(src, Path(tmp) / f"{key}-{len(paths)}.onnx", form, calib[key])
                except Exception as exc:  # a form the quantiser cannot make: reported, not fatal
                    result.setdefault("failed", {})[f"{key} {form}"] = str(exc).splitlines()[0][:200]
            sessions = {name: _session(p, _options(threads)) for name, p in paths.items()}
            sessions["dynamic, 1 thread"] = _session(paths["dynamic"], _options(1))
            sessions["fp32, 1 thread"] = _session(src, _options(1))
            sessions["dynamic, spinning"] = _session(paths["dynamic"], _options(
                threads, session__intra_op__allow_spinning="1"))
            sessions["dynamic, ORT_ENABLE_EXTENDED"] = _session(paths["dynamic"], _graph_level(
                _options(threads), ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED))
            feed, name = inputs[key], outputs[key]
            ref = sessions["fp32"].run([name], feed)[0]
            error = {k: float(np.linalg.norm(s.run([name], feed)[0] - ref) / np.linalg.norm(ref))
                     for k, s in sessions.items()}
            fns: dict[str, Callable[[], Mapping[str, float] | None]] = {
                k: (lambda s=s, name=name, feed=feed: s.run([name], feed) and None) for k, s in sessions.items()}
            log(f"  {key}: {len(fns)} variants x {runs} rounds")
            times, _ = interleaved(fns, runs)
            result[key] = {k: {"median_ms": 1e3 * statistics.median(v), "vs_fp32": paired(v, times["fp32"]),
                               "rel_error": error[k], "bytes": paths[k].stat().st_size if k in paths else None}
                           for k, v in times.items()}
            for k, v in result[key].items():
                log(f"    {k:32s} {v['median_ms']:8.0f} ms  {v['vs_fp32']:.2f}x  rel err {v['rel_error']:.3f}")
    return result


def _graph_level(so: Any, level: Any) -> Any:
    so.graph_optimization_level = level
    return so


def kernels(threads: int, runs: int) -> dict[str, Any]:
    """One MatMul per dominant shape: fp32, dynamic int8 (as exported, and without reduce_range),
    the bare MatMulInteger kernel (inputs already uint8/int8), static QLinearMatMul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m, k, n in ((500, 768, 3072), (16000, 1536, 512)):
            w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
            a = rng.standard_normal((1, m, k)).astype(np.float32)

            def model(nodes: list[Any], inputs: list[Any], out_type: int, inits: list[Any], name: str) -> Path:
                g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", out_type, None)], inits)
                path = Path(tmp) / f"{name}.onnx"
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
                return path

            fin = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, m, k])]
            f32 = model([helper.make_node("MatMul", ["a", "w"], ["y"])], fin, TensorProto.FLOAT,
                        [numpy_helper.from_array(w, "w")], "fp32")
            paths = {"fp32": f32}
            for rr in (True, False):
                paths[f"dynamic int8{' reduce_range' if rr else ''}"] = Path(tmp) / f"dyn{rr}.onnx"
                quantize_dynamic(f32, paths[f"dynamic int8{' reduce_range' if rr else ''}"], reduce_range=rr,
                                 weight_type=QuantType.QInt8)
            wq = np.clip(np.round(w / (np.abs(w).max() / 63)), -63, 63).astype(np.int8)
            aq = rng.integers(0, 128, size=(1, m, k), dtype=np.uint8)
            paths["MatMulInteger u8 x s8 (kernel only)"] = model(
                [helper.make_node("MatMulInteger", ["a", "w"], ["y"])],
                [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, m, k])], TensorProto.INT32,
                [numpy_helper.from_array(wq, "w")], "mmi")
            scalars = [numpy_helper.from_array(np.array(v, dtype=t), nm) for nm, v, t in (
                ("sa", 0.02, np.float32), ("za", 128, np.uint8), ("sw", 0.001, np.float32), ("zw", 0, np.int8),
                ("sy", 0.05, np.float32), ("zy", 128, np.uint8))]
            paths["static QLinearMatMul (quantise, kernel, dequantise)"] = model(
                [helper.make_node("QuantizeLinear", ["a", "sa", "za"], ["aq"]),
                 helper.make_node("QLinearMatMul", ["aq", "sa", "za", "w", "sw", "zw", "sy", "zy"], ["yq"]),
                 helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["y"])],
                fin, TensorProto.FLOAT, [numpy_helper.from_array(wq, "w"), *scalars], "qlinear")
            sessions = {name: _session(p, _options(threads)) for name, p in paths.items()}
            feeds = {name: {"a": aq if "MatMulInteger" in name else a} for name in sessions}
            fns: dict[str, Callable[[], Mapping[str, float] | None]] = {
                name: (lambda s=s, f=feeds[name]: s.run(None, f) and None) for name, s in sessions.items()}
            times, _ = interleaved(fns, runs)
            shape = f"({m} x {k}) @ ({k} x {n})"
            gmac = m * k * n / 1e9
            result[shape] = {name: {"median_ms": 1e3 * statistics.median(v), "vs_fp32": paired(v, times["fp32"]),
                                    "gmac_per_s": gmac / statistics.median(v)} for name, v in times.items()}
            for name, v in result[shape].items():
                log(f"  {shape} {name:52s} {v['median_ms']:7.1f} ms {v['vs_fp32']:.2f}x {v['gmac_per_s']:.0f} GMAC/s")
    return result


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path, nargs="?")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--forward", action="store_true", help="every graph of a full-depth forward, per op type")
    mode.add_argument("--options", action="store_true", help="int8 forms and session settings, timed")
    mode.add_argument("--kernels", action="store_true", help="one MatMul per dominant shape, fp32 vs int8")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    if args.bundle is None and not args.kernels:
        ap.error("BUNDLE is needed (all modes but --kernels)")
    report: dict[str, Any] = {"machine": machine(args.threads), "loadavg_start": os.getloadavg()}
    if args.kernels:
        report["kernels"] = kernels(args.threads, args.runs)
    elif args.options:
        report["options"] = options(args.bundle, args.threads, args.runs)
    elif args.forward:
        for precision in ("fp32", "int8"):
            stages = profile_forward(args.bundle, precision, args.threads, args.runs)
            report[precision] = stages
            total = sum(sum(ops.values()) for ops in stages.values())
            print(f"{precision}: full-depth forward {total:.0f} ms per {SECONDS:.0f} s (sum of kernel times)")
            for stage, ops in stages.items():
                print(f"  {stage}: {sum(ops.values()):.0f} ms")
                for op, ms in sorted(ops.items(), key=lambda kv: -kv[1]):
                    if ms >= 0.01 * total:
                        print(f"    {op:24s} {ms:7.0f} ms  {100 * ms / total:4.0f}%")
    else:
        for precision in ("fp32", "int8"):
            ops = profile(args.bundle, precision, args.threads, args.runs)
            report[precision] = ops
            total = sum(ops.values())
            print(f"{precision}: frontend {total:.0f} ms per 10 s run (sum of kernel times)")
            for op, ms in ops.items():
                if ms >= 0.01 * total:
                    print(f"  {op:24s} {ms:7.0f} ms  {100 * ms / total:4.0f}%")
    report["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
