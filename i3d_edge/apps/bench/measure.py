"""Measurements of one model: dynamic depth against full-depth baselines (see the package notes)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...manifest import role_of
from ...module_kinds import MODULE_KINDS
from .environment import environment
from .report import VARIANTS, duration_label
from .synthetic import SAMPLE_RATE, bench_audio
from .timing import Stages, interleaved, median, paired_ratio, summary

__all__ = ["SCHEMA", "BenchConfig", "BenchModel", "random_model", "run_bench"]

SCHEMA = "i3d-edge-bench/1"

Log = Callable[[str], None]
Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # features, lens -> log_probs, lens


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how often. ``quick()`` gives a short development run."""

    model: Path | None = None  # bundle directory; None: a random-weight model of the size below
    checkpoint: Path | None = None  # weights for (a); None: the random checkpoint, or a random init
    random_layers: int = 18  # size of the random-weight model (when ``model`` is None)
    random_d_model: int = 256
    threads: int = 1  # onnxruntime intra-op threads per session and torch threads
    repeats: int = 10  # timed rounds per utterance length (after one warm-up round)
    lengths: tuple[float, ...] = (2.0, 10.0, 30.0)  # utterance lengths (seconds)
    long_seconds: float = 600.0  # the long file (through Runtime.transcribe); 0: skip
    long_repeats: int = 3
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # forced executed fractions
    sweep_seconds: float = 10.0  # utterance length of the fraction sweep and the per-graph timing
    cold_runs: int = 5  # fresh processes per cold-start variant; 0: skip
    rss: bool = True  # peak RSS of a fresh process on the long file
    audio: str = "synthetic"  # synthetic | a directory of audio files (real speech)
    cache_dir: Path | None = None  # random-model bundles; None: $XDG_CACHE_HOME/i3d-edge/bench
    name: str | None = None  # label of the model in the report
    quick: bool = False

    def __post_init__(self) -> None:
        if self.threads < 1 or self.repeats < 1 or self.long_repeats < 1 or self.cold_runs < 0:
            raise ConfigError("threads, repeats and long_repeats must be >= 1, cold_runs >= 0")
        if not self.lengths or min(self.lengths) < 0.5 or not all(0.0 < f <= 1.0 for f in self.fractions):
            raise ConfigError("lengths must be >= 0.5 s and fractions in (0, 1]")

    @classmethod
    def quick_preset(cls, **changes: Any) -> BenchConfig:
        """A short run for development: few repeats, a 60 s long file, two cold starts."""
        base: dict[str, Any] = {"repeats": 3, "long_seconds": 60.0, "long_repeats": 1, "cold_runs": 2,
                                "quick": True}
        base.update({k: v for k, v in changes.items() if v is not None})
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}



@dataclass
class BenchModel:
    """A bundle ready to benchmark: int8 and monolithic graphs present (derived when missing)."""

    name: str
    bundle: Path
    origin: str  # where the bundle comes from
    checkpoint: Path | None  # torch weights for (a), when known
    notes: list[str]


def _source_hash() -> str:
    """Hash of the code that shapes an exported bundle (a cached random bundle is stale without it)."""
    pkg = Path(__file__).resolve().parents[2]  # i3d_edge
    files = [*sorted((pkg / "export").glob("*.py")), pkg / "models" / "i3d.py", pkg / "models" / "checkpoint.py",
             pkg / "config.py", pkg / "manifest.py"]
    h = hashlib.sha256()
    for f in files:
        with contextlib.suppress(OSError):
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _cache_root(cfg: BenchConfig) -> Path:
    if cfg.cache_dir is not None:
        return Path(cfg.cache_dir)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "i3d-edge" / "bench"


def random_model(cfg: BenchConfig, log: Log) -> BenchModel:
    """A random-weight global-gate model (``init``-style config) exported with int8 and monolithic."""
    from ...config import ModelConfig
    from ...export import export_bundle
    from ...manifest import load_manifest
    from ...models.checkpoint import random_checkpoint, save_checkpoint

    layers, d = cfg.random_layers, cfg.random_d_model
    root = _cache_root(cfg) / f"random-{layers}x{d}-seed0-{_source_hash()}"
    ckpt_path, bundle = root / "ckpt.pt", root / "bundle"
    try:
        load_manifest(bundle)
        ready = ckpt_path.is_file()
    except Exception:  # missing or stale: export again
        ready = False
    if not ready:
        log(f"exporting a random {layers}-layer d_model {d} model to {root} (cached for later runs)")
        mcfg = ModelConfig(n_layers=layers, d_model=d, n_heads=4, d_ff=4 * d, gates="global")
        save_checkpoint(ckpt_path, random_checkpoint(mcfg, seed=0))
        export_bundle(ckpt_path, bundle, quantize="int8", monolithic=True, force=True)
    name = cfg.name or f"random {layers} layers, d_model {d}"
    return BenchModel(name, bundle, f"random weights (seed 0), exported by the bench to {bundle}", ckpt_path,
                      ["random weights: gate decisions of (d) are those of random gate predictors"])


def _prepare(cfg: BenchConfig, work: Path, log: Log) -> BenchModel:
    if cfg.model is None:
        model = random_model(cfg, log)
    else:
        model = BenchModel(cfg.name or Path(cfg.model).name, Path(cfg.model), f"bundle {cfg.model}",
                           cfg.checkpoint, [])
    if cfg.checkpoint is not None:
        model.checkpoint = cfg.checkpoint
    from ...export.compose import complete_bundle

    model.bundle = complete_bundle(model.bundle, work / "derived", model.notes, log)
    return model


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    from ...runtime.sessions import session_options

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def _eager(model: BenchModel, manifest: Any, threads: int) -> tuple[Forward, str, int]:
    """(a): a forward function of the PyTorch model at full depth, a description of its weights,
    and the parameter count. Torch is imported here and nowhere else in the measurement."""
    import torch

    from ...models.checkpoint import load_checkpoint, random_checkpoint

    torch.set_num_threads(threads)
    if model.checkpoint is not None:
        ckpt = load_checkpoint(model.checkpoint)
        weights = f"checkpoint {model.checkpoint.name}"
    else:  # full-depth speed does not depend on the weights' values
        ckpt = random_checkpoint(manifest.model_config, feature_config=manifest.feature_config)
        weights = "random init of the bundle's config (full-depth speed does not depend on the weights)"
    net = ckpt.build_model()
    params = sum(p.numel() for p in net.parameters())

    def forward(features: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            out = net(torch.from_numpy(features), torch.from_numpy(lens), full_depth=True)
            return out.log_probs.numpy(), out.lens.numpy()

    return forward, weights, params


def _features(audio: np.ndarray, fc: Any) -> tuple[np.ndarray, np.ndarray]:
    from ...features import extract_features

    feats = extract_features(audio, fc)  # (T, F)
    return feats[None], np.array([feats.shape[0]], dtype=np.int64)


def _through_runtime(rt: Any, forward: Forward) -> Any:
    """Runtime ``rt`` at full depth with ``forward`` as its encoder (every module counted as run):
    ``transcribe`` then streams, cuts, batches and decodes exactly as for the runtime variants,
    so the long-file times of (a) and (b) differ from (c) only in the forward."""
    from ...runtime import ForwardOutput

    n = rt.modules_total

    def swapped(features: np.ndarray, lens: np.ndarray) -> Any:
        log_probs, out_lens = forward(np.ascontiguousarray(features, dtype=np.float32),
                                      np.ascontiguousarray(lens, dtype=np.int64))
        on = np.ones((features.shape[0], n), dtype=bool)
        return ForwardOutput(log_probs, out_lens, on.astype(np.float32), on, {})

    return rt.with_options(full_depth=True).with_encoder(swapped)


@dataclass
class _Setup:
    model: BenchModel
    manifest: Any
    runtimes: dict[str, Any]  # "c", "d", "c_int8", "d_int8" -> Runtime
    monolithic: dict[str, Any]  # "b", "b_int8" -> InferenceSession
    eager: Forward
    eager_weights: str
    params: int
    load_s: dict[str, float]


def _setup(model: BenchModel, threads: int) -> _Setup:
    from ...manifest import load_manifest
    from ...runtime import Runtime

    manifest = load_manifest(model.bundle)
    load: dict[str, float] = {}
    runtimes: dict[str, Any] = {}
    mono: dict[str, Any] = {}
    for suffix, precision in (("", "fp32"), ("_int8", "int8")):
        t = perf_counter()
        rt = Runtime(model.bundle, threads=threads, precision=precision, decoder="greedy")
        load[f"runtime{suffix}"] = perf_counter() - t
        runtimes["c" + suffix] = rt.with_options(full_depth=True)
        runtimes["d" + suffix] = rt
        t = perf_counter()
        mono["b" + suffix] = _session(model.bundle / manifest.variant(precision).graphs["monolithic"], threads)
        load[f"monolithic{suffix}"] = perf_counter() - t
    eager, weights, params = _eager(model, manifest, threads)
    return _Setup(model, manifest, runtimes, mono, eager, weights, params, load)


def _forward_fns(s: _Setup, feats: np.ndarray, lens: np.ndarray) -> dict[str, Callable[[], Stages]]:
    """The seven variants on one padded batch, each returning its stage timings (or None)."""
    def mono(key: str) -> Callable[[], Stages]:
        sess = s.monolithic[key]
        return lambda: (sess.run(["log_probs"], {"features": feats, "features_lens": lens}), None)[1]

    def runtime(key: str) -> Callable[[], Stages]:
        rt = s.runtimes[key]
        return lambda: rt.forward(feats, lens).timings

    fns: dict[str, Callable[[], Stages]] = {"a": lambda: (s.eager(feats, lens), None)[1]}  # (a)
    for suffix in ("", "_int8"):
        fns["b" + suffix] = mono("b" + suffix)
        fns["c" + suffix] = runtime("c" + suffix)
        fns["d" + suffix] = runtime("d" + suffix)
    return {k: fns[k] for k in VARIANTS}


def _mono_forward(session: Any) -> Forward:
    def forward(features: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_probs, out_lens = session.run(["log_probs", "log_probs_lens"], {"features": features,
                                                                             "features_lens": lens})
        return log_probs, out_lens

    return forward


def _executed_fraction(out: Any) -> float:
    return float(np.asarray(out.gates).mean())


# ============================================================================ measurements
def _utterances(s: _Setup, cfg: BenchConfig, log: Log) -> list[dict[str, Any]]:
    fc = s.manifest.feature_config
    rows = []
    for seconds in cfg.lengths:
        audio = bench_audio(seconds, cfg.audio, seed=int(seconds * 1000))
        feats, lens = _features(audio, fc)
        fractions = {k: _executed_fraction(s.runtimes[k].forward(feats, lens)) for k in ("c", "d", "c_int8", "d_int8")}
        log(f"  {seconds:g} s utterance: {cfg.repeats} rounds x {len(VARIANTS)} variants")
        times, stages = interleaved(_forward_fns(s, feats, lens), cfg.repeats)
        rows.append(_row(f"{seconds:g} s", seconds, times, stages, fractions, "encoder forward"))
    return rows


def _row(label: str, seconds: float, times: dict[str, list[float]], stages: dict[str, list[dict[str, float]]],
         fractions: Mapping[str, float], kind: str) -> dict[str, Any]:
    variants = {}
    for k, ts in times.items():
        v = summary(ts, seconds)
        if k in fractions:
            v["executed_fraction"] = fractions[k]
        st = [x for x in stages.get(k, []) if x]
        if st:
            v["stages_median_s"] = {name: median([x.get(name, 0.0) for x in st]) for name in st[0]}
        variants[k] = v
    ratios = {
        "c/b": paired_ratio(times["c"], times["b"]),
        "c_int8/b_int8": paired_ratio(times["c_int8"], times["b_int8"]),
        "a/b": paired_ratio(times["a"], times["b"]),
        "a/c": paired_ratio(times["a"], times["c"]),
        "a/c_int8": paired_ratio(times["a"], times["c_int8"]),
        "b/b_int8": paired_ratio(times["b"], times["b_int8"]),
        "c/c_int8": paired_ratio(times["c"], times["c_int8"]),
        "d/d_int8": paired_ratio(times["d"], times["d_int8"]),
        "c/d": paired_ratio(times["c"], times["d"]),
    }
    return {"label": label, "seconds": seconds, "kind": kind, "variants": variants, "ratios": ratios}


def _long_file(s: _Setup, cfg: BenchConfig, wav: Path, log: Log) -> dict[str, Any]:
    fractions: dict[str, float] = {}  # executed fraction (median over segments), from the timed runs
    segments: list[int] = []

    def transcribe(rt: Any, key: str) -> Callable[[], Stages]:
        def run() -> Stages:
            tr = rt.transcribe(wav)
            fractions[key] = median([len(seg.executed_modules) / tr.modules_total for seg in tr.segments])
            segments.append(len(tr.segments))
            return dict(tr.timings)

        return run

    fns: dict[str, Callable[[], Stages]] = {"a": transcribe(_through_runtime(s.runtimes["c"], s.eager), "a")}
    for suffix in ("", "_int8"):
        swapped = _through_runtime(s.runtimes["c" + suffix], _mono_forward(s.monolithic["b" + suffix]))
        fns["b" + suffix] = transcribe(swapped, "b" + suffix)
        fns["c" + suffix] = transcribe(s.runtimes["c" + suffix], "c" + suffix)
        fns["d" + suffix] = transcribe(s.runtimes["d" + suffix], "d" + suffix)
    log(f"  {duration_label(cfg.long_seconds)} file: {cfg.long_repeats} rounds x {len(VARIANTS)} variants")
    # no warm-up round: every session is warm from the utterances, and a round of the long file is long
    times, stages = interleaved({k: fns[k] for k in VARIANTS}, cfg.long_repeats, warmup=0)
    n_segments = max(segments)
    row = _row(duration_label(cfg.long_seconds) + " file", cfg.long_seconds, times, stages, fractions,
               "end to end: Runtime.transcribe (read, cut into <= 30 s segments, features, batches, forward, "
               "decode); (a)/(b) with their forward swapped in")
    row["segments"] = n_segments
    return row


def _sweep(s: _Setup, cfg: BenchConfig, log: Log) -> dict[str, Any]:
    """Encoder time against the executed fraction, forced with threshold 0 + max_modules."""
    rt = s.runtimes["d"]
    total = rt.modules_total
    feats, lens = _features(bench_audio(cfg.sweep_seconds, cfg.audio, seed=7), s.manifest.feature_config)
    views: dict[str, Any] = {"full": rt.with_options(full_depth=True)}
    ks: dict[str, int] = {}
    for f in cfg.fractions:
        k = round(f * total)
        views[f"f{f:g}"] = rt.with_options(threshold=0.0, max_modules=k)
        ks[f"f{f:g}"] = k
    mix = {}
    for name, view in views.items():
        out = view.forward(feats, lens)
        ran = [m for m, on in zip(rt.module_names, out.gates[0].tolist(), strict=True) if on]
        mix[name] = {kind: sum(role_of(m) == kind for m in ran) for kind in rt.manifest.model_config.layer_kinds}

    def call(view: Any) -> Callable[[], Stages]:
        return lambda: view.forward(feats, lens).timings

    log(f"  fraction sweep ({cfg.sweep_seconds:g} s): {cfg.repeats} rounds x {len(views)} settings")
    times, stages = interleaved({name: call(v) for name, v in views.items()}, cfg.repeats)

    def encoder(name: str) -> list[float]:  # gate predictor + modules: the part that depth scales
        return [st["gates"] + st["modules"] for st in stages[name]]

    points = []
    for f in cfg.fractions:
        name = f"f{f:g}"
        points.append({
            "fraction": f, "max_modules": ks[name], **mix[name],  # executed modules per kind: mha, ffn ...
            "encoder_median_s": median(encoder(name)), "forward_median_s": median(times[name]),
            "encoder_ratio": paired_ratio(encoder(name), encoder("full")),
            "forward_ratio": paired_ratio(times[name], times["full"]),
        })
    return {"seconds": cfg.sweep_seconds, "modules_total": total, "points": points,
            "full": {"encoder_median_s": median(encoder("full")), "forward_median_s": median(times["full"]),
                     **mix["full"]}}


def _runner(session: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Stages]:
    return lambda: (session.run(None, feeds), None)[1]


def _forward_runner(rt: Any, feats: np.ndarray, lens: np.ndarray) -> Callable[[], Stages]:
    return lambda: rt.forward(feats, lens).timings


def _graphs(s: _Setup, cfg: BenchConfig, log: Log) -> dict[str, Any]:
    """Time per graph, with fresh sessions of every graph, interleaved with (b) and (c) on the
    same input, so the split of (c) - (b) into graph split cost and Python orchestration adds up."""
    feats, lens = _features(bench_audio(cfg.sweep_seconds, cfg.audio, seed=11), s.manifest.feature_config)
    result: dict[str, Any] = {"seconds": cfg.sweep_seconds}
    for suffix, precision in (("", "fp32"), ("_int8", "int8")):
        variant = s.manifest.variant(precision)
        sessions, create = {}, {}
        for key, rel in variant.graphs.items():
            if key != "monolithic":
                t = perf_counter()
                sessions[key] = _session(s.model.bundle / rel, cfg.threads)
                create[key] = perf_counter() - t
        x, x_lens = sessions["frontend"].run(None, {"features": feats, "features_lens": lens})
        feeds: dict[str, dict[str, np.ndarray]] = {"frontend": {"features": feats, "features_lens": lens},
                                                   "head": {"encoder_out": x}}
        for key in sessions:
            role = role_of(key)
            if role == "gate" or (role in MODULE_KINDS and MODULE_KINDS[role].needs_lens):
                feeds[key] = {"x": x, "x_lens": x_lens}
            elif role in MODULE_KINDS:
                feeds[key] = {"x": x}

        fns: dict[str, Callable[[], Stages]] = {k: _runner(sessions[k], feeds[k]) for k in sessions}
        fns["(b) monolithic"] = _runner(s.monolithic["b" + suffix], {"features": feats, "features_lens": lens})
        fns["(c) runtime"] = _forward_runner(s.runtimes["c" + suffix], feats, lens)
        log(f"  per-graph timing {precision}: {cfg.repeats} rounds x {len(fns)} graphs")
        times, stages = interleaved(fns, cfg.repeats)
        med = {k: median(v) for k, v in times.items()}
        graph_sum = sum(med[k] for k in sessions)
        result[precision] = {
            "frontend_s": med["frontend"], "gate_s": sum(med[k] for k in sessions if role_of(k) == "gate"),
            **{f"{kind}_mean_s": float(np.mean([med[k] for k in sessions if role_of(k) == kind]))
               for kind in s.manifest.model_config.layer_kinds},  # mha_mean_s, ffn_mean_s ...
            "head_s": med["head"],
            "graphs_sum_s": graph_sum, "monolithic_s": med["(b) monolithic"], "runtime_full_s": med["(c) runtime"],
            "runtime_stages_s": {k: median([st[k] for st in stages["(c) runtime"]])
                                 for k in ("frontend", "gates", "modules", "head")},
            "split_cost_s": graph_sum - med["(b) monolithic"],
            "orchestration_s": med["(c) runtime"] - graph_sum,
            "session_create_s": sum(create.values()),
            "per_graph_s": {k: med[k] for k in sessions},
        }
    return result


# ---------------------------------------------------------------------------- fresh processes
_RSS_SCRIPT = r"""
import json, resource, sys, time
def hwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
bundle, threads, precision, lazy, wav = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]
decoder = sys.argv[6]
from i3d_edge.runtime import Runtime
imports = hwm()
rt = Runtime(bundle, threads=threads, precision=precision, lazy=lazy, decoder=decoder)
loaded = hwm()
tr = rt.transcribe(wav)
print(json.dumps({"peak_after_import": imports, "peak_after_load": loaded, "peak": hwm(),
                  "duration": tr.duration, "segments": len(tr.segments), "modules_executed": tr.modules_executed}))
"""

_COLD_SCRIPT = r"""
import time
t0 = time.perf_counter()
import sys, json
import i3d_edge
from i3d_edge import Runtime
t1 = time.perf_counter()
bundle, threads, precision, lazy, wav = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]
rt = Runtime(bundle, threads=threads, precision=precision, lazy=lazy, decoder=sys.argv[6])
t2 = time.perf_counter()
tr = rt.transcribe(wav)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "runtime_s": t2 - t1, "first_result_s": t3 - t2, "total_s": t3 - t0}))
"""


def _fresh(script: str, args: Sequence[str]) -> tuple[dict[str, Any], float]:
    t = perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=1800)
    wall = perf_counter() - t
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"benchmark subprocess failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


# (precision, lazy, decoder): the encoder variants decode greedily, so they compare like with
# like; "fp32-lm" adds the bundle's language model (loaded at the first decode) when it has one.
_PROCESS_VARIANTS = (("fp32", False, "greedy"), ("fp32", True, "greedy"), ("int8", False, "greedy"),
                     ("fp32", False, "lm"))


def _process_variants(s: _Setup) -> list[tuple[str, tuple[str, bool, str]]]:
    from ...runtime.decoding import lm_available

    lm = s.manifest.decoder is not None and lm_available()
    return [(f"{p}{'-lazy' if lazy else ''}{'-lm' if d == 'lm' else ''}", (p, lazy, d))
            for p, lazy, d in _PROCESS_VARIANTS if d == "greedy" or lm]


def _process_args(s: _Setup, cfg: BenchConfig, wav: Path, variant: tuple[str, bool, str]) -> list[str]:
    precision, lazy, decoder = variant
    return [str(s.model.bundle), str(cfg.threads), precision, "1" if lazy else "0", str(wav), decoder]


def _rss(s: _Setup, cfg: BenchConfig, wav: Path, log: Log) -> dict[str, Any]:
    out = {}
    for key, variant in _process_variants(s):
        log(f"  peak RSS: fresh process, {key}, {duration_label(cfg.long_seconds)} file")
        res, wall = _fresh(_RSS_SCRIPT, _process_args(s, cfg, wav, variant))
        res["wall_s"] = wall
        out[key] = res
    return {"audio_seconds": cfg.long_seconds, "runs": out}


def _cold(s: _Setup, cfg: BenchConfig, wav: Path, log: Log) -> dict[str, Any]:
    variants = _process_variants(s)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in variants}
    log(f"  cold start: {cfg.cold_runs} rounds x {len(variants)} variants (+1 warm-up round)")
    for r in range(cfg.cold_runs + 1):  # round 0 warms the page cache
        for key, variant in variants:
            res, wall = _fresh(_COLD_SCRIPT, _process_args(s, cfg, wav, variant))
            res["process_wall_s"] = wall
            if r:
                runs[key].append(res)
    summary = {k: {f: median([x[f] for x in v]) for f in ("import_s", "runtime_s", "first_result_s", "total_s",
                                                             "process_wall_s")} for k, v in runs.items()}
    return {"audio_seconds": 2.0, "runs": runs, "median": summary}


def _sizes(manifest: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in manifest.variants:
        graphs = manifest.variant(name).graphs
        runtime = sum(manifest.files[rel]["bytes"] if isinstance(manifest.files[rel], dict) else 0
                      for k, rel in graphs.items() if k != "monolithic")
        mono = manifest.files[graphs["monolithic"]]["bytes"] if "monolithic" in graphs else None
        out[name] = {"runtime_bytes": runtime, "runtime_graphs": len(graphs) - ("monolithic" in graphs),
                     "monolithic_bytes": mono}
    if "fp32" in out and "int8" in out:
        out["ratio_runtime"] = out["fp32"]["runtime_bytes"] / out["int8"]["runtime_bytes"]
        if out["fp32"]["monolithic_bytes"] and out["int8"]["monolithic_bytes"]:
            out["ratio_monolithic"] = out["fp32"]["monolithic_bytes"] / out["int8"]["monolithic_bytes"]
    return out


def run_bench(cfg: BenchConfig, log: Log | None = None) -> dict[str, Any]:
    """Benchmark one model (see the module notes); returns a JSON-friendly report."""
    say = log or (lambda _msg: None)
    env = environment(cfg.threads)
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="i3d-edge-bench-") as tmp:
        work = Path(tmp)
        model = _prepare(cfg, work, say)
        say(f"model {model.name}: {model.bundle}")
        s = _setup(model, cfg.threads)
        mc = s.manifest.model_config
        report: dict[str, Any] = {
            "schema": SCHEMA,
            "environment": env,
            "config": cfg.to_dict(),
            "model": {"name": model.name, "origin": model.origin, "bundle": str(model.bundle),
                      "config": mc.to_dict(), "predictor": s.manifest.predictor, "params": s.params,
                      "threshold": s.runtimes["d"].threshold, "eager_weights": s.eager_weights,
                      "notes": model.notes, "audio": cfg.audio},
            "load_in_process_s": s.load_s,
            "sizes": _sizes(s.manifest),
        }
        report["utterances"] = _utterances(s, cfg, say)
        wav = work / "long.wav"
        short_wav = work / "short.wav"
        import soundfile as sf

        if cfg.long_seconds > 0:
            say(f"  generating the {duration_label(cfg.long_seconds)} file")
            sf.write(wav, bench_audio(cfg.long_seconds, cfg.audio, seed=600), SAMPLE_RATE, subtype="PCM_16")
            report["long_file"] = _long_file(s, cfg, wav, say)
        report["sweep"] = _sweep(s, cfg, say)
        report["graphs"] = _graphs(s, cfg, say)
        if cfg.rss and cfg.long_seconds > 0:
            report["rss"] = _rss(s, cfg, wav, say)
        if cfg.cold_runs:
            sf.write(short_wav, bench_audio(2.0, cfg.audio, seed=2), SAMPLE_RATE, subtype="PCM_16")
            report["cold_start"] = _cold(s, cfg, short_wav, say)
    env["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env["bench_seconds"] = perf_counter() - started
    return report
