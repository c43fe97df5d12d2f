"""End-to-end depth scaling and the 2 s orchestration ratio (issue #18).

    python benchmarks/end_to_end.py [--rounds 10] [--short-rounds 30] [--threads 1] [--json out.json]

1. **End to end, 20 s wav** (16 kHz, `i3d_edge.apps.bench.synthetic.speech_like`), a random-weight 12-layer
   d_model 256 bundle (exported once and cached like `i3d-edge bench --random-layers 12`):
   `Runtime.transcribe(path)` at full depth against half the modules (`threshold=0`,
   `max_modules=N`), fp32 and int8, greedy decoding; the per-stage split (load, features,
   frontend, gates, modules, head, decode) from `Transcript.timings`.
2. **2 s clips**: the runtime's forward at full depth (c) against the monolithic graph (b) on the
   same features, fp32 and int8, for the default model and the 12 x 256 model.

Every measurement interleaves its variants (each round runs every variant once, in a fresh
shuffled order, after one untimed warm-up round); times are medians, ratios medians of the
per-round ratios. Prints markdown; ``--json`` also writes the raw numbers. Run it from the
checkout whose ``i3d_edge`` you want to measure (``PYTHONPATH``): the same script measures the
code before and after a change.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import soundfile as sf

import i3d_edge
from i3d_edge.apps.bench.measure import BenchConfig, random_model
from i3d_edge.apps.bench.synthetic import speech_like
from i3d_edge.apps.bench.timing import interleaved
from i3d_edge.export.compose import compose_monolithic
from i3d_edge.features import log_mel, normalize
from i3d_edge.manifest import Manifest
from i3d_edge.runtime import Runtime
from i3d_edge.runtime.results import STAGES
from i3d_edge.runtime.sessions import session_options

DEFAULT_BUNDLE = Path(i3d_edge.__file__).resolve().parent / "assets" / "default"


def _median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def _ratio(num: list[float], den: list[float]) -> float:
    return statistics.median([n / d for n, d in zip(num, den, strict=True)])


def _cpu_timed(into: list[float], fn: Callable[[], Mapping[str, float]]) -> Mapping[str, float]:
    t = time.process_time()
    out = fn()
    into.append(time.process_time() - t)
    return out


def end_to_end(bundle: Path, wav: Path, threads: int, rounds: int) -> dict[str, Any]:
    """Full depth vs half the modules through ``Runtime.transcribe``, fp32 and int8."""
    fns: dict[str, Callable[[], Mapping[str, float]]] = {}
    executed: dict[str, int] = {}
    for precision in ("fp32", "int8"):
        rt = Runtime(bundle, threads=threads, precision=precision, decoder="greedy")
        half = rt.modules_total // 2
        variants = {"full": rt.with_options(full_depth=True), "half": rt.with_options(threshold=0.0, max_modules=half)}
        for depth, r in variants.items():
            key = f"{precision} {depth}"
            executed[key] = r.transcribe(wav).modules_executed
            fns[key] = (lambda r=r, k=key: _cpu_timed(cpu[k], lambda: r.transcribe(wav).timings))
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    times, stages = interleaved(fns, rounds)
    cpu = {k: v[1:] for k, v in cpu.items()}  # the warm-up round is not timed
    out: dict[str, Any] = {"executed": executed, "median_ms": {k: _median_ms(v) for k, v in times.items()},
                           "stages_ms": {k: {s: _median_ms([row[s] for row in rows]) for s in STAGES}
                                         for k, rows in stages.items()},
                           "ratio_half_full": {p: _ratio(times[f"{p} half"], times[f"{p} full"])
                                               for p in ("fp32", "int8")},
                           "cpu_ratio_half_full": {p: _ratio(cpu[f"{p} half"], cpu[f"{p} full"])
                                                   for p in ("fp32", "int8")}}
    return out


def fixed_costs(bundle: Path, wavs: Mapping[str, Path], threads: int, rounds: int) -> dict[str, dict[str, float]]:
    """CPU milliseconds (``time.process_time``, so background load on other cores does not count)
    of every per-utterance stage that does not scale with the executed depth, one 20 s input:
    read + resample (``load_audio``; one file at the model rate, one at 22.05 kHz), features
    (log-mel + normalisation), the frontend, gate and head graphs, greedy decoding; beside them
    one gated module (mean of all) for scale. Medians of ``rounds``."""
    from i3d_edge.audio import load_audio
    from i3d_edge.ctc import greedy_decode
    from i3d_edge.manifest import load_manifest

    manifest = load_manifest(bundle)
    fc = manifest.feature_config
    graphs = manifest.variant("fp32").graphs
    sess = {k: ort.InferenceSession(str(manifest.verify(graphs[k])), session_options(threads),
                                    providers=["CPUExecutionProvider"]) for k in ("frontend", "gate", "head",
                                                                                  *manifest.modules)}
    audio = load_audio(wavs["16 kHz"], target_rate=fc.sample_rate)
    feats = normalize(log_mel(audio, fc), fc)[None]  # (1, T, F)
    lens = np.array([feats.shape[1]], dtype=np.int64)  # (1,)
    x, x_lens = sess["frontend"].run(None, {"features": feats, "features_lens": lens})  # (1, T', D), (1,)
    log_probs = sess["head"].run(None, {"encoder_out": x})[0]  # (1, T', V)

    def module_mean() -> None:
        for key in manifest.modules:
            sess[key].run(None, {"x": x, "x_lens": x_lens} if key.endswith(".mha") else {"x": x})

    stages: dict[str, Callable[[], object]] = {
        **{f"read + resample ({name})": (lambda w=w: load_audio(w, target_rate=fc.sample_rate))
           for name, w in wavs.items()},
        "features": lambda: normalize(log_mel(audio, fc), fc),
        "frontend": lambda: sess["frontend"].run(None, {"features": feats, "features_lens": lens}),
        "gate predictor": lambda: sess["gate"].run(None, {"x": x, "x_lens": x_lens}),
        "head": lambda: sess["head"].run(None, {"encoder_out": x}),
        "greedy decode": lambda: greedy_decode(log_probs[0]),
        "all gated modules": module_mean,
    }
    cpu: dict[str, list[float]] = {k: [] for k in stages}
    for r in range(rounds + 1):
        for key in np.random.default_rng(r).permutation(list(stages)):
            t = time.process_time()
            stages[key]()
            if r:
                cpu[key].append(time.process_time() - t)
    out = {k: _median_ms(v) for k, v in cpu.items()}
    out["one gated module (mean)"] = out.pop("all gated modules") / len(manifest.modules)
    return {"cpu_ms": out}


def binding_variants(bundle: Path, seconds: float, threads: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """The runtime's chain of session runs (frontend, gate, every module, head) on one clip, fed
    three ways, against the monolithic graph: numpy in and out (``run``, what the runtime does),
    OrtValues passed from session to session (``run_with_ort_values``: no numpy conversion), and
    IO binding (``run_with_iobinding``, outputs bound once per session and chained as OrtValues).
    fp32, medians of interleaved rounds: how much of the (c)/(b) gap the binding could win back."""
    from i3d_edge.manifest import load_manifest

    manifest = load_manifest(bundle)
    graphs = manifest.variant("fp32").graphs
    fc = manifest.feature_config
    keys = ["frontend", "gate", *manifest.modules, "head"]
    sess = {k: ort.InferenceSession(str(manifest.verify(graphs[k])), session_options(threads),
                                    providers=["CPUExecutionProvider"]) for k in keys}
    mono = ort.InferenceSession(_monolithic(manifest, "fp32", tmp), session_options(threads),
                                providers=["CPUExecutionProvider"])
    feats = normalize(log_mel(speech_like(seconds, seed=1), fc), fc)[None]  # (1, T, F)
    lens = np.array([feats.shape[1]], dtype=np.int64)  # (1,)
    mods = [(k, k.endswith(".mha")) for k in manifest.modules]

    def numpy_run() -> Any:
        x, xl = sess["frontend"].run(["x", "x_lens"], {"features": feats, "features_lens": lens})
        sess["gate"].run(["gate_probs"], {"x": x, "x_lens": xl})
        for k, mha in mods:
            x = sess[k].run(["y"], {"x": x, "x_lens": xl} if mha else {"x": x})[0]
        return sess["head"].run(["log_probs"], {"encoder_out": x})[0]

    def ortvalue_run() -> Any:
        f, n = ort.OrtValue.ortvalue_from_numpy(feats), ort.OrtValue.ortvalue_from_numpy(lens)
        x, xl = sess["frontend"].run_with_ort_values(["x", "x_lens"], {"features": f, "features_lens": n})
        sess["gate"].run_with_ort_values(["gate_probs"], {"x": x, "x_lens": xl})
        for k, mha in mods:
            x = sess[k].run_with_ort_values(["y"], {"x": x, "x_lens": xl} if mha else {"x": x})[0]
        return sess["head"].run_with_ort_values(["log_probs"], {"encoder_out": x})[0].numpy()

    binds = {k: sess[k].io_binding() for k in keys}
    for k in keys:
        for out in sess[k].get_outputs():
            binds[k].bind_output(out.name)

    def iobinding_run() -> Any:
        b = binds["frontend"]
        b.bind_cpu_input("features", feats)
        b.bind_cpu_input("features_lens", lens)
        sess["frontend"].run_with_iobinding(b)
        x, xl = b.get_outputs()
        b = binds["gate"]
        b.bind_ortvalue_input("x", x)
        b.bind_ortvalue_input("x_lens", xl)
        sess["gate"].run_with_iobinding(b)
        for k, mha in mods:
            b = binds[k]
            b.bind_ortvalue_input("x", x)
            if mha:
                b.bind_ortvalue_input("x_lens", xl)
            sess[k].run_with_iobinding(b)
            x = b.get_outputs()[0]
        b = binds["head"]
        b.bind_ortvalue_input("encoder_out", x)
        sess["head"].run_with_iobinding(b)
        return b.copy_outputs_to_cpu()[0]

    ref = numpy_run()
    for fn in (ortvalue_run, iobinding_run):
        np.testing.assert_allclose(fn(), ref, atol=1e-5)
    fns: dict[str, Callable[[], None]] = {
        "monolithic": lambda: (mono.run(["log_probs"], {"features": feats, "features_lens": lens}), None)[1],
        "run (numpy)": lambda: (numpy_run(), None)[1], "run_with_ort_values": lambda: (ortvalue_run(), None)[1],
        "io binding": lambda: (iobinding_run(), None)[1]}
    times, _ = interleaved(fns, rounds)
    return {"session_runs": len(keys), "median_ms": {k: _median_ms(v) for k, v in times.items()},
            "ratio_to_monolithic": {k: _ratio(v, times["monolithic"]) for k, v in times.items()}}


def _monolithic(manifest: Manifest, precision: str, tmp: Path) -> str:
    """The variant's monolithic graph, composed from its own graphs when the bundle has none."""
    graphs = manifest.variant(precision).graphs
    if "monolithic" in graphs:
        return str(manifest.verify(graphs["monolithic"]))
    import onnx  # export extra: only for bundles shipped without a monolithic graph

    path = tmp / f"monolithic-{precision}.onnx"
    onnx.save(compose_monolithic(manifest.root, graphs, manifest.modules), path)
    return str(path)


def short_clips(bundle: Path, seconds: float, threads: int, rounds: int, tmp: Path) -> dict[str, Any]:
    """(c) runtime full-depth forward vs (b) monolithic graph on the features of one clip."""
    audio = speech_like(seconds, seed=1)
    fns: dict[str, Callable[[], None]] = {}
    for precision in ("fp32", "int8"):
        rt = Runtime(bundle, threads=threads, precision=precision, decoder="greedy").with_options(full_depth=True)
        fc = rt.feature_config
        feats = normalize(log_mel(audio, fc), fc)[None]  # (1, T, F)
        lens = np.array([feats.shape[1]], dtype=np.int64)  # (1,)
        mono = ort.InferenceSession(_monolithic(rt.manifest, precision, tmp), session_options(threads),
                                    providers=["CPUExecutionProvider"])
        feeds = {"features": feats, "features_lens": lens}
        fns[f"b {precision}"] = (lambda m=mono, d=feeds: (m.run(["log_probs"], d), None)[1])
        fns[f"c {precision}"] = (lambda r=rt, f=feats, n=lens: (r.forward(f, n), None)[1])
    times, _ = interleaved(fns, rounds)
    return {"median_ms": {k: _median_ms(v) for k, v in times.items()},
            "ratio_c_b": {p: _ratio(times[f"c {p}"], times[f"b {p}"]) for p in ("fp32", "int8")}}


def _git() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(DEFAULT_BUNDLE.parent), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(DEFAULT_BUNDLE.parent), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10, help="timed rounds, 20 s end to end")
    ap.add_argument("--short-rounds", type=int, default=30, help="timed rounds, 2 s forwards")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20.0, help="end-to-end audio length")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args()

    big = random_model(BenchConfig(random_layers=12, random_d_model=256), print).bundle
    load_start = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "utterance.wav"
        sf.write(wav, speech_like(args.seconds, seed=0), 16000, subtype="PCM_16")
        wav22 = Path(tmp) / "utterance-22k.wav"
        sf.write(wav22, speech_like(args.seconds, sample_rate=22050, seed=0), 22050, subtype="PCM_16")
        fixed = fixed_costs(big, {"16 kHz": wav, "22.05 kHz": wav22}, args.threads, args.rounds)
        e2e = end_to_end(big, wav, args.threads, args.rounds)
        short = {"default model": short_clips(DEFAULT_BUNDLE, 2.0, args.threads, args.short_rounds, Path(tmp)),
                 "random 12 x 256": short_clips(big, 2.0, args.threads, args.short_rounds, Path(tmp))}
        binding = binding_variants(DEFAULT_BUNDLE, 2.0, args.threads, args.short_rounds, Path(tmp))
    load_end = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    report = {"i3d_edge": str(Path(i3d_edge.__file__).resolve().parent), "git": _git(),
              "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "cpu": platform.processor() or
              platform.machine(), "numpy": np.__version__, "onnxruntime": ort.__version__, "threads": args.threads,
              "load_start": load_start, "load_end": load_end, "end_to_end": e2e, "fixed": fixed,
              "short": short, "binding": binding}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    _print(report, args)


def _print(r: dict[str, Any], args: argparse.Namespace) -> None:
    e = r["end_to_end"]
    print(f"i3d_edge from {r['i3d_edge']} (git {r['git']}), {r['date_utc']} UTC, numpy {r['numpy']}, "
          f"onnxruntime {r['onnxruntime']}, {r['threads']} thread(s), load {' '.join(r['load_start'])} -> "
          f"{' '.join(r['load_end'])}\n")
    print(f"### End to end, {args.seconds:g} s wav, random 12 layers d_model 256, median of {args.rounds} rounds\n")
    print("| variant | modules run | total ms | " + " | ".join(STAGES) + " |")
    print("|---|---|---|" + "---|" * len(STAGES))
    for key, total in e["median_ms"].items():
        st = e["stages_ms"][key]
        print(f"| {key} | {e['executed'][key]} | {total:.1f} | " + " | ".join(f"{st[s]:.1f}" for s in STAGES) + " |")
    print("\n| ratio half / full (target <= 0.60) | fp32 | int8 |\n|---|---|---|")
    for label, key in (("wall time", "ratio_half_full"), ("CPU time", "cpu_ratio_half_full")):
        print(f"| end to end, {label} | {e[key]['fp32']:.3f} | {e[key]['int8']:.3f} |")
    print()
    print(f"### Per-utterance fixed costs, {args.seconds:g} s input, CPU ms (process time), median of "
          f"{args.rounds}\n")
    print("| stage | CPU ms |\n|---|---|")
    for k, v in r["fixed"]["cpu_ms"].items():
        print(f"| {k} | {v:.2f} |")
    print()
    print(f"### 2 s clips: (c) runtime full depth vs (b) monolithic graph, median of {args.short_rounds} rounds\n")
    print("| model | (b) fp32 ms | (c) fp32 ms | (c)/(b) fp32 | (b) int8 ms | (c) int8 ms | (c)/(b) int8 |")
    print("|---|---|---|---|---|---|---|")
    for name, s in r["short"].items():
        m, q = s["median_ms"], s["ratio_c_b"]
        print(f"| {name} | {m['b fp32']:.2f} | {m['c fp32']:.2f} | {q['fp32']:.3f} | {m['b int8']:.2f} | "
              f"{m['c int8']:.2f} | {q['int8']:.3f} |")
    b = r["binding"]
    print(f"\n### 2 s, default model, fp32: the {b['session_runs']} session runs of a full-depth forward fed three "
          f"ways, median of {args.short_rounds} rounds\n")
    print("| variant | ms | / monolithic |\n|---|---|---|")
    for k, v in b["median_ms"].items():
        print(f"| {k} | {v:.2f} | {b['ratio_to_monolithic'][k]:.3f} |")


if __name__ == "__main__":
    main()
