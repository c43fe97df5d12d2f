"""Speed and memory benchmarks (issue #6): dynamic depth against full-depth baselines, one run.

For one model, on the same machine and thread settings, :func:`run_bench` measures

* (a) PyTorch eager at full depth (``Checkpoint.build_model()``, ``inference_mode``);
* (b) the monolithic full-depth ONNX graph in onnxruntime, with the runtime's SessionOptions;
* (c) the runtime with every module forced on (``full_depth=True``);
* (d) the runtime at the bundle's default threshold (its executed fraction is reported);
* (e) (b)-(d) again with the int8 variant;

and reports real-time factors (2 s / 10 s / 30 s utterances and a long file through
``Runtime.transcribe``), encoder time against a forced executed fraction (``threshold=0`` plus
``max_modules``), time per graph, the orchestration overhead (c)/(b), peak RSS and cold start
of fresh processes, and bundle sizes, each against the targets of issue #6.

Timing method: the variants run in rounds (every variant once per round, in a shuffled order,
after one untimed warm-up round), so background load hits all of them alike; times are medians
and ratios are medians of the per-round ratios. Torch is imported only by the eager baseline
and by the export of a random-weight model; everything else is numpy + onnxruntime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["SCHEMA", "TARGETS", "BenchConfig", "render_markdown", "run_bench", "speech_like", "verdict"]

SCHEMA = "i3d-edge-bench/1"
SAMPLE_RATE = 16000
MB = 1024 * 1024

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

VARIANTS: dict[str, str] = {
    "a": "(a) PyTorch eager, full depth",
    "b": "(b) ONNX monolithic",
    "c": "(c) runtime, full depth",
    "d": "(d) runtime, default threshold",
    "b_int8": "(b) int8",
    "c_int8": "(c) int8",
    "d_int8": "(d) int8",
}

Log = Callable[[str], None]
Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # features, lens -> log_probs, lens


# ============================================================================ configuration
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
    audio: str = "synthetic"  # synthetic | ljspeech | a directory of audio files
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


# ============================================================================ statistics
def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _iqr(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v
    q = np.percentile(np.asarray(values), [25, 75])
    return float(q[0]), float(q[1])


def _paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios num[i] / den[i] (both measured in the same round)."""
    return _median([n / d for n, d in zip(num, den, strict=True) if d > 0])


Stages = Mapping[str, float] | None


def interleaved(fns: Mapping[str, Callable[[], Stages]], repeats: int, *, warmup: int = 1, seed: int = 0
                ) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """Run every function once per round, ``warmup + repeats`` rounds; the warm-up round runs
    them in the given order, every timed round in a fresh (seeded) shuffled order, so that no
    function always follows the same one (a torch worker pool still spinning, a cache state).
    Returns wall times and the stage timings the functions return (e.g.
    ``ForwardOutput.timings``), timed rounds only, indexed by round."""
    names = list(fns)
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names if r < warmup else [names[i] for i in rng.permutation(len(names))]
        for name in order:
            t = perf_counter()
            extra = fns[name]()
            elapsed = perf_counter() - t
            if r >= warmup:
                times[name].append(elapsed)
                stages[name].append(dict(extra or {}))
    return times, stages


def _summary(times: Sequence[float], seconds: float | None = None) -> dict[str, Any]:
    lo, hi = _iqr(times)
    out: dict[str, Any] = {"median_s": _median(times), "q1_s": lo, "q3_s": hi, "n": len(times),
                           "times_s": [round(t, 6) for t in times]}
    if seconds:
        out["rtf"] = out["median_s"] / seconds
    return out


# ============================================================================ test audio
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (660, 1720, 2410),
           (300, 870, 2240), (570, 840, 2410), (440, 1020, 2240), (490, 1350, 1690))


def speech_like(seconds: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like audio, float32 (n,): syllables of formant-shaped harmonics with
    a moving pitch, fricative noise onsets, short gaps between words and longer pauses between
    sentences (so long audio has quiet points to cut at), over a faint noise floor."""
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = round(seconds * sr)
    out = np.zeros(n, dtype=np.float64)
    pos = int(rng.uniform(0.05, 0.2) * sr)
    f0_base = rng.uniform(95.0, 210.0)
    sentence_end = pos + int(rng.uniform(3.0, 9.0) * sr)
    while pos < n:
        for _ in range(int(rng.integers(1, 4))):  # one word: 1-3 syllables
            m = min(int(rng.uniform(0.09, 0.26) * sr), n - pos)
            if m <= 16:
                break
            if rng.random() < 0.35:  # fricative onset: high-passed noise burst
                k = min(m, int(rng.uniform(0.03, 0.08) * sr))
                out[pos:pos + k] += 0.04 * np.diff(rng.standard_normal(k + 1)) * np.hanning(k)
            t = np.arange(m) / sr
            f0 = f0_base * (1.0 + 0.06 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6))
                            + rng.uniform(-0.08, 0.08) * t / t[-1])  # (m,) Hz
            phase = 2 * np.pi * np.cumsum(f0) / sr  # (m,)
            harmonics = np.arange(1, max(2, int(3800 / f0_base)) + 1)  # (K,)
            formants = np.asarray(_VOWELS[int(rng.integers(len(_VOWELS)))]) * rng.uniform(0.9, 1.15)
            freqs = harmonics * f0_base
            amp = sum(w * np.exp(-0.5 * ((freqs - f) / bw) ** 2)
                      for f, w, bw in zip(formants, (1.0, 0.6, 0.3), (90.0, 120.0, 160.0), strict=True))
            amp = (amp + 0.02) / np.sqrt(harmonics)  # (K,) formant envelope with spectral tilt
            args = (phase[:, None] * harmonics[None, :] + rng.uniform(0, 6, harmonics.size)).astype(np.float32)
            wave = np.sin(args) @ amp.astype(np.float32)  # (m,): float32 is plenty and twice as fast
            out[pos:pos + m] += 0.25 * np.hanning(m) ** 0.5 * wave / amp.sum()
            pos += m
        pos += int(rng.uniform(0.03, 0.2) * sr)  # gap between words
        if pos >= sentence_end:  # pause between sentences, new speaker pitch
            pos += int(rng.uniform(0.35, 0.8) * sr)
            sentence_end = pos + int(rng.uniform(3.0, 9.0) * sr)
            f0_base = float(np.clip(f0_base * rng.uniform(0.85, 1.15), 90.0, 230.0))
    out += 0.003 * rng.standard_normal(n)
    return out.astype(np.float32)


def _real_speech(seconds: float, source: Path, offset: int = 0) -> np.ndarray:
    """``seconds`` of speech from the audio files of ``source`` (sorted, joined with 0.25 s of
    silence, repeated as needed), starting at clip ``offset``."""
    from .audio import load_audio

    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
    if not files:
        raise FileNotFoundError(f"{source}: no audio files")
    clips = [load_audio(p, target_rate=SAMPLE_RATE) for p in files]
    gap = np.zeros(SAMPLE_RATE // 4, dtype=np.float32)
    need = round(seconds * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    have, i = 0, offset
    while have < need:
        clip = clips[i % len(clips)]
        pieces += [clip, gap]
        have += clip.size + gap.size
        i += 1
    return np.concatenate(pieces)[:need]


def _ljspeech_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "ljspeech-dev" / "audio"


@functools.lru_cache(maxsize=16)
def _audio(seconds: float, source: str, seed: int) -> np.ndarray:
    if source == "synthetic":
        return speech_like(seconds, seed=seed)
    path = _ljspeech_dir() if source == "ljspeech" else Path(source)
    return _real_speech(seconds, path.resolve(), offset=seed)


# ============================================================================ environment
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm")
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    return []


def _physical_cores() -> int | None:
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or 0) or None
    except ImportError:
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' (modified)' if dirty else ''}" if head else None


def environment(threads: int) -> dict[str, Any]:
    """Machine, library versions, thread settings and date of a run."""
    from . import __version__

    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) * 1024
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {"i3d-edge": __version__, "onnxruntime": _version("onnxruntime"), "numpy": _version("numpy"),
                     "onnx": _version("onnx"), "torch": _version("torch")},
        "git": _git_commit(),
        "threads": {"onnxruntime_intra_op": threads, "onnxruntime_inter_op": 1, "torch": threads,
                    "policy": "runtime SessionOptions (sequential, ORT_ENABLE_ALL, no mem pattern, one shared "
                              "CPU arena, no thread spinning) for every onnxruntime session"},
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ============================================================================ models and bundles
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
    pkg = Path(__file__).resolve().parent
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


def _random_model(cfg: BenchConfig, log: Log) -> BenchModel:
    """A random-weight global-gate model (``init``-style config) exported with int8 and monolithic."""
    from .config import ModelConfig
    from .export import export_bundle
    from .manifest import load_manifest
    from .models.checkpoint import random_checkpoint, save_checkpoint

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
        model = _random_model(cfg, log)
    else:
        model = BenchModel(cfg.name or Path(cfg.model).name, Path(cfg.model), f"bundle {cfg.model}",
                           cfg.checkpoint, [])
    if cfg.checkpoint is not None:
        model.checkpoint = cfg.checkpoint
    model.bundle = _complete_bundle(model.bundle, work / "derived", model.notes, log)
    return model


def _complete_bundle(src: Path, dst: Path, notes: list[str], log: Log) -> Path:
    """``src`` itself when it has an int8 variant and monolithic graphs in both variants; else a
    copy at ``dst`` with the missing pieces derived without torch: int8 graphs quantised with the
    export's settings, monolithic graphs composed from the bundle's own graphs."""
    from .manifest import load_manifest, role_of, sha256_file

    load_manifest(src)  # a valid bundle to start from
    data = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    variants = data["variants"]
    if "int8" in variants and all("monolithic" in v["graphs"] for v in variants.values()):
        return src
    import onnx

    log(f"{src}: completing the bundle for the benchmark in {dst}")
    shutil.copytree(src, dst)
    if "int8" not in variants:
        from .export.quantize import INT8, quantize_int8

        graphs = {}
        (dst / "int8").mkdir(exist_ok=True)
        for key, rel in variants["fp32"]["graphs"].items():
            if key == "monolithic":
                continue
            out = f"int8/{Path(rel).name}"
            onnx.save(quantize_int8(onnx.load(dst / rel), key, role_of(key)), dst / out)
            graphs[key] = out
        variants["int8"] = {"quantization": dict(INT8), "graphs": graphs}
        notes.append("int8 variant quantised by the bench with the export's settings (the bundle has none)")
    for name, variant in variants.items():
        if "monolithic" not in variant["graphs"]:
            out = f"{name}/monolithic.onnx"
            onnx.save(compose_monolithic(dst, variant["graphs"]), dst / out)
            variant["graphs"]["monolithic"] = out
            notes.append(f"{name} monolithic graph composed from the bundle's frontend, module and head graphs "
                         "(the bundle has no exported monolithic.onnx)")
    data["files"] = {**data["files"],  # keeps non-graph files (the language model)
                     **{rel: {"sha256": sha256_file(dst / rel), "bytes": (dst / rel).stat().st_size}
                        for v in variants.values() for rel in v["graphs"].values()}}
    (dst / "manifest.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    load_manifest(dst)
    return dst


def compose_monolithic(root: Path, graphs: Mapping[str, str]) -> Any:
    """One full-depth graph (features, features_lens -> log_probs, log_probs_lens) chained from a
    variant's frontend, every module graph in order and the head (an onnx ModelProto)."""
    import onnx
    from onnx import compose, helper

    keys = ["frontend", *sorted(k for k in graphs if k.endswith((".mha", ".ffn"))), "head"]
    keys[1:-1] = sorted(keys[1:-1], key=lambda k: (k.split(".")[0], k.endswith(".ffn")))  # mha before ffn
    nodes: list[Any] = []
    inits: list[Any] = []
    value_info: list[Any] = []
    opsets: dict[str, int] = {}
    ir_version = 0
    current = ""  # name of the hidden state tensor so far
    inputs: list[Any] = []
    outputs: list[Any] = []
    for i, key in enumerate(keys):
        prefix = f"g{i}_"
        model = compose.add_prefix(onnx.load(root / graphs[key]), prefix)
        ir_version = max(ir_version, model.ir_version)
        for imp in model.opset_import:
            opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
        g = model.graph
        for inp in g.input:
            orig = inp.name[len(prefix):]
            source = {"x": current, "encoder_out": current}.get(orig, orig)  # features, features_lens, x_lens
            nodes.append(helper.make_node("Identity", [source], [inp.name], name=f"wire_{inp.name}"))
            if key == "frontend":
                vi = onnx.ValueInfoProto()
                vi.CopyFrom(inp)
                vi.name = orig
                inputs.append(vi)
        nodes.extend(g.node)
        inits.extend(g.initializer)
        value_info.extend(g.value_info)
        outs = {o.name[len(prefix):]: o for o in g.output}
        if key == "frontend":
            current = outs["x"].name
            nodes.append(helper.make_node("Identity", [outs["x_lens"].name], ["x_lens"], name="wire_x_lens"))
            lens_vi = onnx.ValueInfoProto()
            lens_vi.CopyFrom(outs["x_lens"])
            lens_vi.name = "log_probs_lens"
        elif key == "head":
            nodes.append(helper.make_node("Identity", [outs["log_probs"].name], ["log_probs"], name="out_log_probs"))
            nodes.append(helper.make_node("Identity", ["x_lens"], ["log_probs_lens"], name="out_lens"))
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(outs["log_probs"])
            vi.name = "log_probs"
            outputs += [vi, lens_vi]
        else:
            current = outs["y"].name
    graph = helper.make_graph(nodes, "monolithic_composed", inputs, outputs, initializer=inits, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = ir_version
    return model


# ============================================================================ variants
def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    from .runtime.sessions import session_options

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def _eager(model: BenchModel, manifest: Any, threads: int) -> tuple[Forward, str, int]:
    """(a): a forward function of the PyTorch model at full depth, a description of its weights,
    and the parameter count. Torch is imported here and nowhere else in the measurement."""
    import torch

    from .models.checkpoint import load_checkpoint, random_checkpoint

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
    from .features import extract_features

    feats = extract_features(audio, fc)  # (T, F)
    return feats[None], np.array([feats.shape[0]], dtype=np.int64)


def _through_runtime(rt: Any, forward: Forward) -> Any:
    """A view of Runtime ``rt`` whose encoder forward is ``forward`` (every module counted as run):
    ``transcribe`` then streams, cuts, batches and decodes exactly as for the runtime variants,
    so the long-file times of (a) and (b) differ from (c) only in the forward."""
    from .runtime import ForwardOutput

    view = rt.with_options(full_depth=True)
    n = rt.modules_total

    def swapped(features: np.ndarray, lens: np.ndarray) -> Any:
        log_probs, out_lens = forward(np.ascontiguousarray(features, dtype=np.float32),
                                      np.ascontiguousarray(lens, dtype=np.int64))
        on = np.ones((features.shape[0], n), dtype=bool)
        return ForwardOutput(log_probs, out_lens, on.astype(np.float32), on, {})

    view.forward = swapped
    return view


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
    from .manifest import load_manifest
    from .runtime import Runtime

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
        audio = _audio(seconds, cfg.audio, seed=int(seconds * 1000))
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
        v = _summary(ts, seconds)
        if k in fractions:
            v["executed_fraction"] = fractions[k]
        st = [x for x in stages.get(k, []) if x]
        if st:
            v["stages_median_s"] = {name: _median([x.get(name, 0.0) for x in st]) for name in st[0]}
        variants[k] = v
    ratios = {
        "c/b": _paired_ratio(times["c"], times["b"]),
        "c_int8/b_int8": _paired_ratio(times["c_int8"], times["b_int8"]),
        "a/b": _paired_ratio(times["a"], times["b"]),
        "a/c": _paired_ratio(times["a"], times["c"]),
        "a/c_int8": _paired_ratio(times["a"], times["c_int8"]),
        "b/b_int8": _paired_ratio(times["b"], times["b_int8"]),
        "c/c_int8": _paired_ratio(times["c"], times["c_int8"]),
        "d/d_int8": _paired_ratio(times["d"], times["d_int8"]),
        "c/d": _paired_ratio(times["c"], times["d"]),
    }
    return {"label": label, "seconds": seconds, "kind": kind, "variants": variants, "ratios": ratios}


def _long_file(s: _Setup, cfg: BenchConfig, wav: Path, log: Log) -> dict[str, Any]:
    fractions: dict[str, float] = {}  # executed fraction (median over segments), from the timed runs
    segments: list[int] = []

    def transcribe(rt: Any, key: str) -> Callable[[], Stages]:
        def run() -> Stages:
            tr = rt.transcribe(wav)
            fractions[key] = _median([len(seg.executed_modules) / tr.modules_total for seg in tr.segments])
            segments.append(len(tr.segments))
            return dict(tr.timings)

        return run

    fns: dict[str, Callable[[], Stages]] = {"a": transcribe(_through_runtime(s.runtimes["c"], s.eager), "a")}
    for suffix in ("", "_int8"):
        swapped = _through_runtime(s.runtimes["c" + suffix], _mono_forward(s.monolithic["b" + suffix]))
        fns["b" + suffix] = transcribe(swapped, "b" + suffix)
        fns["c" + suffix] = transcribe(s.runtimes["c" + suffix], "c" + suffix)
        fns["d" + suffix] = transcribe(s.runtimes["d" + suffix], "d" + suffix)
    log(f"  {_duration(cfg.long_seconds)} file: {cfg.long_repeats} rounds x {len(VARIANTS)} variants")
    # no warm-up round: every session is warm from the utterances, and a round of the long file is long
    times, stages = interleaved({k: fns[k] for k in VARIANTS}, cfg.long_repeats, warmup=0)
    n_segments = max(segments)
    row = _row(_duration(cfg.long_seconds) + " file", cfg.long_seconds, times, stages, fractions,
               "end to end: Runtime.transcribe (read, cut into <= 30 s segments, features, batches, forward, "
               "decode); (a)/(b) with their forward swapped in")
    row["segments"] = n_segments
    return row


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _sweep(s: _Setup, cfg: BenchConfig, log: Log) -> dict[str, Any]:
    """Encoder time against the executed fraction, forced with threshold 0 + max_modules."""
    rt = s.runtimes["d"]
    total = rt.modules_total
    feats, lens = _features(_audio(cfg.sweep_seconds, cfg.audio, seed=7), s.manifest.feature_config)
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
        mix[name] = (sum(m.endswith(".mha") for m in ran), sum(m.endswith(".ffn") for m in ran))

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
            "fraction": f, "max_modules": ks[name], "mha": mix[name][0], "ffn": mix[name][1],
            "encoder_median_s": _median(encoder(name)), "forward_median_s": _median(times[name]),
            "encoder_ratio": _paired_ratio(encoder(name), encoder("full")),
            "forward_ratio": _paired_ratio(times[name], times["full"]),
        })
    return {"seconds": cfg.sweep_seconds, "modules_total": total, "points": points,
            "full": {"encoder_median_s": _median(encoder("full")), "forward_median_s": _median(times["full"]),
                     "mha": mix["full"][0], "ffn": mix["full"][1]}}


def _runner(session: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Stages]:
    return lambda: (session.run(None, feeds), None)[1]


def _forward_runner(rt: Any, feats: np.ndarray, lens: np.ndarray) -> Callable[[], Stages]:
    return lambda: rt.forward(feats, lens).timings


def _graphs(s: _Setup, cfg: BenchConfig, log: Log) -> dict[str, Any]:
    """Time per graph, with fresh sessions of every graph, interleaved with (b) and (c) on the
    same input, so the split of (c) - (b) into graph split cost and Python orchestration adds up."""
    from .manifest import role_of

    feats, lens = _features(_audio(cfg.sweep_seconds, cfg.audio, seed=11), s.manifest.feature_config)
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
            if role in ("gate", "mha"):
                feeds[key] = {"x": x, "x_lens": x_lens}
            elif role == "ffn":
                feeds[key] = {"x": x}

        fns: dict[str, Callable[[], Stages]] = {k: _runner(sessions[k], feeds[k]) for k in sessions}
        fns["(b) monolithic"] = _runner(s.monolithic["b" + suffix], {"features": feats, "features_lens": lens})
        fns["(c) runtime"] = _forward_runner(s.runtimes["c" + suffix], feats, lens)
        log(f"  per-graph timing {precision}: {cfg.repeats} rounds x {len(fns)} graphs")
        times, stages = interleaved(fns, cfg.repeats)
        med = {k: _median(v) for k, v in times.items()}
        mha = [med[k] for k in sessions if role_of(k) == "mha"]
        ffn = [med[k] for k in sessions if role_of(k) == "ffn"]
        graph_sum = sum(med[k] for k in sessions)
        result[precision] = {
            "frontend_s": med["frontend"], "gate_s": sum(med[k] for k in sessions if role_of(k) == "gate"),
            "mha_mean_s": float(np.mean(mha)), "ffn_mean_s": float(np.mean(ffn)), "head_s": med["head"],
            "graphs_sum_s": graph_sum, "monolithic_s": med["(b) monolithic"], "runtime_full_s": med["(c) runtime"],
            "runtime_stages_s": {k: _median([st[k] for st in stages["(c) runtime"]])
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
    from .runtime.decoding import lm_available

    lm = s.manifest.decoder is not None and lm_available()
    return [(f"{p}{'-lazy' if lazy else ''}{'-lm' if d == 'lm' else ''}", (p, lazy, d))
            for p, lazy, d in _PROCESS_VARIANTS if d == "greedy" or lm]


def _process_args(s: _Setup, cfg: BenchConfig, wav: Path, variant: tuple[str, bool, str]) -> list[str]:
    precision, lazy, decoder = variant
    return [str(s.model.bundle), str(cfg.threads), precision, "1" if lazy else "0", str(wav), decoder]


def _rss(s: _Setup, cfg: BenchConfig, wav: Path, log: Log) -> dict[str, Any]:
    out = {}
    for key, variant in _process_variants(s):
        log(f"  peak RSS: fresh process, {key}, {_duration(cfg.long_seconds)} file")
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
    summary = {k: {f: _median([x[f] for x in v]) for f in ("import_s", "runtime_s", "first_result_s", "total_s",
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


# ============================================================================ targets
def _check(kind: str, condition: str, value: float | None, limit: float | None = None) -> dict[str, Any]:
    op, default, what = TARGETS[kind]
    limit = default if limit is None else limit
    ok = None if value is None or not np.isfinite(value) else (value <= limit if op == "<=" else value >= limit)
    return {"target": kind, "what": what, "condition": condition, "value": value, "op": op, "limit": limit,
            "pass": ok}


def verdict(kind: str, value: float | None, limit: float | None = None) -> bool | None:
    """PASS (True), MISS (False) or n/a (None, no finite value) of ``value`` against target ``kind``
    (``TARGETS``; ``limit`` replaces its default): the comparison behind every row of RESULTS.md."""
    result: bool | None = _check(kind, "", value, limit)["pass"]
    return result


def _targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    audio_rows = [*r["utterances"], *([r["long_file"]] if r.get("long_file") else [])]
    for row in audio_rows:
        rows.append(_check("orchestration", f"fp32, {row['label']}", row["ratios"]["c/b"]))
        rows.append(_check("orchestration", f"int8, {row['label']}", row["ratios"]["c_int8/b_int8"]))
    for p in r["sweep"]["points"]:
        rows.append(_check("depth_scaling", f"f = {p['fraction']:g} ({p['mha']} MHA + {p['ffn']} FFN), "
                                            f"{r['sweep']['seconds']:g} s", p["encoder_ratio"], p["fraction"] + 0.05))
    for row in audio_rows:
        rows.append(_check("vs_eager", f"(b), {row['label']}", row["ratios"]["a/b"]))
        rows.append(_check("vs_eager", f"(c), {row['label']}", row["ratios"]["a/c"]))
    for row in audio_rows:
        rows.append(_check("int8_speed", f"(b), {row['label']}", row["ratios"]["b/b_int8"]))
        rows.append(_check("int8_speed", f"(c), {row['label']}", row["ratios"]["c/c_int8"]))
    sizes = r["sizes"]
    rows.append(_check("int8_size", "runtime graphs", sizes.get("ratio_runtime")))
    rows.append(_check("int8_size", "monolithic graph", sizes.get("ratio_monolithic")))
    if r.get("rss"):
        peak = r["rss"]["runs"]["fp32"]["peak"] / MB
        rows.append(_check("rss", f"fp32, {_duration(r['rss']['audio_seconds'])} file", peak))
        if "fp32-lm" in r["rss"]["runs"]:
            peak = r["rss"]["runs"]["fp32-lm"]["peak"] / MB
            rows.append(_check("rss", f"fp32 + LM decoding, {_duration(r['rss']['audio_seconds'])} file", peak))
    if r.get("cold_start"):
        for key, what in (("fp32", "fp32, median"), ("fp32-lm", "fp32 + LM decoding, median")):
            if key in r["cold_start"]["median"]:
                rows.append(_check("cold_start", what, r["cold_start"]["median"][key]["total_s"]))
    return rows


# ============================================================================ entry point
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
            say(f"  generating the {_duration(cfg.long_seconds)} file")
            sf.write(wav, _audio(cfg.long_seconds, cfg.audio, seed=600), SAMPLE_RATE, subtype="PCM_16")
            report["long_file"] = _long_file(s, cfg, wav, say)
        report["sweep"] = _sweep(s, cfg, say)
        report["graphs"] = _graphs(s, cfg, say)
        if cfg.rss and cfg.long_seconds > 0:
            report["rss"] = _rss(s, cfg, wav, say)
        if cfg.cold_runs:
            sf.write(short_wav, _audio(2.0, cfg.audio, seed=2), SAMPLE_RATE, subtype="PCM_16")
            report["cold_start"] = _cold(s, cfg, short_wav, say)
    env["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env["bench_seconds"] = perf_counter() - started
    report["targets"] = _targets(report)
    return report


# ============================================================================ markdown
def _ms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}x"


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
    # ---- targets
    out += ["### Targets (issue #6)", "", "| target | condition | value | limit | result |", "|---|---|---|---|---|"]
    for t in r["targets"]:
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
    out += ["", "| audio | (a)/(b) | (a)/(c) | (a)/(c) int8 | (c)/(b) | (c)/(b) int8 | (b) fp32/int8 "
            "| (c) fp32/int8 | (d) fp32/int8 | (c)/(d) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        q = row["ratios"]
        out.append(f"| {row['label']} | {_x(q['a/b'])} | {_x(q['a/c'])} | {_x(q['a/c_int8'])} | {_x(q['c/b'], 3)} | "
                   f"{_x(q['c_int8/b_int8'], 3)} | {_x(q['b/b_int8'])} | {_x(q['c/c_int8'])} | "
                   f"{_x(q['d/d_int8'])} | {_x(q['c/d'])} |")
    # ---- sweep
    sw = r["sweep"]
    out += ["", f"### Encoder time against executed fraction ({sw['seconds']:g} s utterance, fp32)", "",
            "`threshold=0` plus `max_modules=round(f x 2N)` runs exactly that many modules (the most probable "
            "ones). Encoder time = gate predictor + modules (`ForwardOutput.timings`); forward adds frontend "
            "and head.", "",
            "| f | modules (MHA + FFN) | encoder | / full depth | limit f + 0.05 | forward | / full depth |",
            "|---|---|---|---|---|---|---|"]
    full = sw["full"]
    out.append(f"| full depth | {full['mha'] + full['ffn']} ({full['mha']} + {full['ffn']}) | "
               f"{_ms(full['encoder_median_s'])} | 1 | - | {_ms(full['forward_median_s'])} | 1 |")
    for p in sw["points"]:
        ok = p["encoder_ratio"] <= p["fraction"] + 0.05
        out.append(f"| {p['fraction']:g} | {p['max_modules']} ({p['mha']} + {p['ffn']}) | "
                   f"{_ms(p['encoder_median_s'])} | {p['encoder_ratio']:.3f} | {p['fraction'] + 0.05:.2f} "
                   f"{_result(ok)} | {_ms(p['forward_median_s'])} | {p['forward_ratio']:.3f} |")
    # ---- per graph
    g = r["graphs"]
    out += ["", f"### Time per graph ({g['seconds']:g} s utterance, batch 1, median of direct session runs)", "",
            "| | frontend | gate | MHA (mean) | FFN (mean) | head | all graphs, full depth | (b) monolithic "
            "| (c) runtime | split cost = sum - (b) | orchestration = (c) - sum | session creation |",
            "|---" * 12 + "|"]
    for p in ("fp32", "int8"):
        x = g[p]
        out.append(f"| {p} | {_ms(x['frontend_s'])} | {_ms(x['gate_s'])} | {_ms(x['mha_mean_s'])} | "
                   f"{_ms(x['ffn_mean_s'])} | {_ms(x['head_s'])} | {_ms(x['graphs_sum_s'])} | "
                   f"{_ms(x['monolithic_s'])} | {_ms(x['runtime_full_s'])} | {_ms(x['split_cost_s'])} | "
                   f"{_ms(x['orchestration_s'])} | {_ms(x['session_create_s'])} |")
    st = g["fp32"]["runtime_stages_s"]
    out += ["", "Runtime stages of (c) fp32 (`ForwardOutput.timings`): "
            + ", ".join(f"{k} {_ms(v)}" for k, v in st.items()) + "."]
    # ---- memory, cold start, sizes
    if r.get("rss"):
        out += ["", f"### Peak RSS (fresh process, `Runtime(...)` + `transcribe` of the "
                f"{_duration(r['rss']['audio_seconds'])} file)", "",
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
    summary = [(r["model"]["name"], t) for r in reports for t in r["targets"]]
    misses = [f"{name}: {t['target']} ({t['condition']})" for name, t in summary if t["pass"] is False]
    out += [f"**Summary**: {sum(t['pass'] is True for _, t in summary)} of "
            f"{sum(t['pass'] is not None for _, t in summary)} target checks pass."
            + (" Missed: " + "; ".join(misses) + "." if misses else ""), ""]
    for r in reports:
        out += _model_md(r)
        out.append("")
    return "\n".join(out).rstrip() + "\n"

