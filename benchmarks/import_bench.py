"""Speed and memory of an imported model at wav2vec2-base size (issue 15, item 5).

Builds a randomly initialised ``transformers`` Wav2Vec2ForCTC with wav2vec2-base dimensions
(12 layers, hidden 768, 12 heads, FFN 3072, the standard 7-layer conv feature encoder, 32-token
vocabulary) offline, saves it with ``save_pretrained``, and runs the user's path through the CLI:
``i3d-edge import`` -> ``i3d-edge export --quantize int8 --monolithic`` -> ``i3d-edge inspect``
-> ``i3d-edge transcribe`` of a 10-minute file. Then it measures

* runtime at full depth vs the monolithic graph of the same bundle (target <= 1.05x),
* encoder (module) time vs forced executed fraction (threshold 0 + max_modules),
* int8 vs fp32: forward time and bundle size,
* peak RSS of a fresh ``i3d-edge transcribe`` process on the 10-minute file (and on 8 x 10 s
  clips that share batches),
* cold start: a fresh process from ``import i3d_edge`` to the first transcript of a 2 s clip.

Timing: interleaved rounds (every variant once per round, shuffled order after a warm-up round),
medians, and ratios as medians of per-round ratios. Writes ``IMPORT.md`` and ``IMPORT.json``.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/import_bench.py            # ~25 min on 2 cores
    PYTHONPATH=$PWD python benchmarks/import_bench.py --tiny --out /tmp/x   # a quick smoke run

Self-contained on purpose: it uses the public CLI, ``Runtime`` and the runtime's session policy,
not the ``i3d-edge bench`` internals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
# wav2vec2-base-960h's vocabulary (32 tokens)
VOCAB = ("<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ")
BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
TINY = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, conv_dim=(32,) * 7)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
NOTES = "<!-- notes: written by hand, kept when the tables are regenerated -->"
INT8_BEGIN, INT8_END = "<!-- int8: begin (import_bench.py --int8) -->", "<!-- int8: end -->"
HEAD_STD = 0.2  # the random CTC head's weights (the library's init, 0.02, gives near-uniform outputs)

# A fresh process: peak RSS (the child's ru_maxrss) and wall time of one command.
_PEAK = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"rc": proc.returncode, "wall_s": wall, "peak_rss": peak, "stderr": proc.stderr[-2000:]}))
"""

# A fresh process: import -> Runtime -> first transcript of a 2 s clip.
_COLD = r"""
import time
t0 = time.perf_counter()
import json, sys
from i3d_edge import Runtime
t1 = time.perf_counter()
rt = Runtime(sys.argv[1], threads=int(sys.argv[2]), precision=sys.argv[3], decoder="greedy")
t2 = time.perf_counter()
tr = rt.transcribe(sys.argv[4])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_transcript_s": t3 - t2, "total_s": t3 - t0}))
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def cli(*args: str) -> tuple[str, float]:
    """Run ``i3d-edge ARGS`` (this checkout) -> (stdout, seconds); fail loudly on a non-zero exit."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", *args], capture_output=True, text=True, env=_env())
    if proc.returncode:
        raise SystemExit(f"i3d-edge {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout, time.perf_counter() - t


def fresh(script: str, args: Sequence[str]) -> tuple[dict[str, Any], float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"benchmark subprocess failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like audio: amplitude-modulated harmonics with a wandering pitch plus noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 110 + 40 * rng.random() + 20 * np.sin(2 * np.pi * 0.3 * t)  # (N,) Hz
    phase = 2 * np.pi * np.cumsum(f0) / SR
    sig = sum(np.sin(k * phase + rng.random() * 6) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + 3 * rng.random()) * t) ** 2
    return (0.2 * env * sig + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def build_model(out: Path, dims: Mapping[str, Any]) -> int:
    """Save a random Wav2Vec2ForCTC (post-LN "base" layout) with vocab and preprocessor config."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    config = tf.Wav2Vec2Config(**dims, vocab_size=len(VOCAB), pad_token_id=0, do_stable_layer_norm=False,
                               feat_extract_norm="group", conv_bias=False)
    model = tf.Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():  # a decisive CTC head (logits std ~5, as a trained model's): int8 vs fp32 text tells
        model.lm_head.weight.normal_(0.0, HEAD_STD)
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (out / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": True, "sampling_rate": SR,
         "feature_size": 1, "padding_value": 0.0, "return_attention_mask": False}))
    return sum(p.numel() for p in model.parameters())


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios."""
    return median([n / d for n, d in zip(num, den, strict=True)])


def interleaved(fns: Mapping[str, Callable[[], Mapping[str, float] | None]], repeats: int, seed: int = 0
                ) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """One warm-up round in the given order, then ``repeats`` rounds in shuffled orders; wall
    times and the returned stage timings of the timed rounds."""
    rng = np.random.default_rng(seed)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(1 + repeats):
        order = names if r == 0 else [names[i] for i in rng.permutation(len(names))]
        for name in order:
            t = time.perf_counter()
            extra = fns[name]()
            elapsed = time.perf_counter() - t
            if r:
                times[name].append(elapsed)
                stages[name].append(dict(extra or {}))
    return times, stages


def machine(threads: int) -> dict[str, Any]:
    import onnxruntime as ort

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split("flags", 2)[1].split("\n", 1)[0] if cpuinfo.exists() else ""
    isa = sorted({f for f in flags.split() if f.startswith(("avx512_vnni", "avx_vnni", "amx", "avx2", "avx512f"))})
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpu": model, "cpus": os.cpu_count(), "isa": isa, "threads": threads, "loadavg": os.getloadavg(),
            "python": platform.python_version(), "onnxruntime": ort.__version__, "commit": commit}


def sizes(bundle: Path) -> dict[str, dict[str, int]]:
    """Per variant: bytes of the per-module bundle (every graph but the monolithic one) and of
    the monolithic graph."""
    man = json.loads((bundle / "manifest.json").read_text())
    out = {}
    for name, variant in man["variants"].items():
        graphs = variant["graphs"]
        out[name] = {"modules_bundle": sum(man["files"][rel]["bytes"] for k, rel in graphs.items()
                                           if k != "monolithic"),
                     "monolithic": man["files"][graphs["monolithic"]]["bytes"] if "monolithic" in graphs else 0}
    return out


def forward_timings(bundle: Path, utt: np.ndarray, threads: int, repeats: int) -> dict[str, Any]:
    import onnxruntime as ort

    from i3d_edge.features import extract_features
    from i3d_edge.manifest import load_manifest
    from i3d_edge.runtime import Runtime
    from i3d_edge.runtime.sessions import session_options

    manifest = load_manifest(bundle)
    n = len(manifest.modules)
    feats = extract_features(utt, manifest.feature_config)[None]  # (1, N, 1) samples
    lens = np.array([feats.shape[1]], dtype=np.int64)  # (1,)
    fns: dict[str, Callable[[], Mapping[str, float] | None]] = {}
    check: dict[str, float] = {}
    fraction: dict[str, float] = {}
    for precision in ("fp32", "int8"):
        rt = Runtime(bundle, threads=threads, precision=precision, decoder="greedy")
        sess = ort.InferenceSession(str(bundle / manifest.variant(precision).graphs["monolithic"]),
                                    session_options(threads), providers=["CPUExecutionProvider"])
        full = rt.with_options(full_depth=True)
        want = sess.run(["log_probs"], {"features": feats, "features_lens": lens})[0]  # (1, T', V)
        check[precision] = float(np.abs(full.forward(feats, lens).log_probs - want).max())

        def mono(sess: Any = sess) -> None:
            sess.run(["log_probs"], {"features": feats, "features_lens": lens})

        fns[f"runtime_{precision}"] = lambda full=full: full.forward(feats, lens).timings
        fns[f"monolithic_{precision}"] = mono
        if precision == "fp32":
            for f in FRACTIONS[:-1]:
                k = round(f * n)
                forced = rt.with_options(threshold=0.0, max_modules=k)
                fraction[f"k{k}"] = float(forced.forward(feats, lens).gates.mean())
                fns[f"k{k}"] = lambda forced=forced: forced.forward(feats, lens).timings
    log(f"  forward: {len(fns)} variants x {repeats} rounds (+1 warm-up) on {utt.size / SR:.0f} s")
    times, stages = interleaved(fns, repeats)
    fraction[f"k{n}"] = 1.0
    return {"times": times, "stages": stages, "parity_max_abs": check, "executed_fraction": fraction,
            "modules_total": n, "audio_s": utt.size / SR}


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    t, st, n = r["forward"]["times"], r["forward"]["stages"], r["forward"]["modules_total"]

    def stage(key: str, name: str) -> list[float]:
        return [s[name] for s in st[key]]

    full_modules = stage("runtime_fp32", "modules")
    frac = []
    for f in FRACTIONS:
        key = "runtime_fp32" if f == 1.0 else f"k{round(f * n)}"
        mods = stage(key, "modules")
        frac.append({"fraction": f, "modules": round(f * n), "measured_fraction": r["forward"]["executed_fraction"][
            "k" + str(round(f * n))], "modules_ms": 1e3 * median(mods), "modules_vs_full": paired(mods, full_modules),
            "forward_ms": 1e3 * median(t[key]), "forward_vs_full": paired(t[key], t["runtime_fp32"])})
    per = {k: {"median_ms": 1e3 * median(v), "stages_ms": {s: 1e3 * median(stage(k, s)) for s in st[k][0]}}
           for k, v in t.items()}
    return {
        "runtime_vs_monolithic": {p: paired(t[f"runtime_{p}"], t[f"monolithic_{p}"]) for p in ("fp32", "int8")},
        "int8_vs_fp32": {"runtime": paired(t["runtime_int8"], t["runtime_fp32"]),
                         "monolithic": paired(t["monolithic_int8"], t["monolithic_fp32"]),
                         "frontend": paired(stage("runtime_int8", "frontend"), stage("runtime_fp32", "frontend")),
                         "modules": paired(stage("runtime_int8", "modules"), stage("runtime_fp32", "modules"))},
        "fractions": frac, "per_variant": per,
    }


def int8_run(args: argparse.Namespace, command: str) -> None:
    """``--int8``: import -> export --quantize int8 -> forward of one utterance at full depth, fp32 and
    int8 interleaved (whole forward and per stage), greedy text of int8 against fp32 on the clips
    (CER), bundle sizes. Writes OUT/IMPORT.json's ``int8`` entry and the int8 section of OUT/IMPORT.md
    (``--reuse`` with ``--work``: the bundle of an earlier ``--int8`` run there, measured again)."""
    from i3d_edge.runtime import Runtime
    from i3d_edge.scoring import score

    with tempfile.TemporaryDirectory(prefix="i3d-import-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        r: dict[str, Any] = {"machine": machine(args.threads), "command": command, "steps": {},
                             "model": "tiny" if args.tiny else "wav2vec2-base dimensions"}
        ckpt, bundle = work / "ckpt.pt", work / "bundle"
        earlier = work / "int8_steps.json"
        if args.reuse and (bundle / "manifest.json").is_file() and earlier.is_file():
            log(f"reusing {bundle}")
            r.update(json.loads(earlier.read_text()))
        else:
            import_and_export(args, work, ckpt, bundle, r)
            r["steps"]["export_command"] = command
            earlier.write_text(json.dumps({"params": r["params"], "steps": r["steps"]}))
        r["sizes"] = sizes(bundle)
        utt = speechlike(args.utterance_seconds, seed=3)
        rts = {p: Runtime(bundle, threads=args.threads, precision=p, decoder="greedy").with_options(full_depth=True)
               for p in ("fp32", "int8")}
        from i3d_edge.features import extract_features

        feats = extract_features(utt, rts["fp32"].manifest.feature_config)[None]  # (1, N, 1)
        lens = np.array([feats.shape[1]], dtype=np.int64)
        outs = {p: rt.forward(feats, lens) for p, rt in rts.items()}
        r["log_probs_max_abs_diff"] = float(np.abs(outs["int8"].log_probs - outs["fp32"].log_probs).max())
        log(f"  forward: fp32 / int8 x {args.repeats} rounds (+1 warm-up) on {utt.size / SR:.0f} s")
        times, stages = interleaved({f"runtime_{p}": (lambda rt=rt: rt.forward(feats, lens).timings)
                                     for p, rt in rts.items()}, args.repeats)
        r["forward"] = {"times": times, "stages": stages, "audio_s": utt.size / SR}
        clips = [speechlike(args.utterance_seconds - 0.5 * i, seed=10 + i) for i in range(args.clips)]
        texts = {p: [t.text for t in rt.transcribe_batch(clips, SR)] for p, rt in rts.items()}
        r["text"] = {"clips": len(clips), "clip_seconds": [c.size / SR for c in clips],
                     "cer_int8_vs_fp32": score(texts["fp32"], texts["int8"]).cer,
                     "fp32_chars": sum(len(t) for t in texts["fp32"]), "fp32_sample": texts["fp32"][0][:80],
                     "int8_sample": texts["int8"][0][:80]}
        r["machine"]["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "IMPORT.json"
    whole = json.loads(results.read_text()) if results.is_file() else {}
    whole["int8"] = r
    _write(results, json.dumps(whole, indent=1) + "\n")
    section = render_int8(r)
    target = args.out / "IMPORT.md"
    old = target.read_text() if target.is_file() else ""
    if INT8_BEGIN in old and INT8_END in old:
        new = old[:old.index(INT8_BEGIN)] + section + old[old.index(INT8_END) + len(INT8_END):]
    else:  # after the title
        head, _, rest = old.partition("\n\n")
        new = f"{head}\n\n{section}\n\n{rest}" if old else section + "\n"
    _write(target, new)
    print(section)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _steps(steps: dict[str, Any]) -> str:
    """"import N s, export M s", or what the step record says instead of a time."""
    return ", ".join(f"{name} {steps[f'{name}_s']:.0f} s" if isinstance(steps.get(f"{name}_s"), (int, float))
                     else f"{name}: {steps.get(f'{name}_note', 'not timed')}" for name in ("import", "export"))


def render_int8(r: dict[str, Any]) -> str:
    t, st, m = r["forward"]["times"], r["forward"]["stages"], r["machine"]

    def stage(key: str, name: str) -> list[float]:
        return [s[name] for s in st[key]]

    fp, i8 = "runtime_fp32", "runtime_int8"
    rows = [("forward, full depth", paired(t[i8], t[fp]), median(t[fp]), median(t[i8]))]
    for name, label in (("frontend", "conv feature encoder + projection (frontend)"), ("modules", "encoder modules")):
        rows.append((label, paired(stage(i8, name), stage(fp, name)), median(stage(fp, name)),
                     median(stage(i8, name))))
    sz = r["sizes"]
    lines = [
        INT8_BEGIN,
        "## int8 that reaches the convolutions (issue 25)",
        "",
        f"Model: {r['model']} ({r['params'] / 1e6:.1f} M parameters), CTC head drawn at std {HEAD_STD} so that "
        "frames are decided with a trained model's margins. Machine: "
        f"{m['cpu']}, {m['cpus']} CPUs ({', '.join(m['isa']) or 'no AVX2/AVX-512 flags'}), load average "
        f"{m['loadavg'][0]:.1f} at the start, {m['loadavg_end'][0]:.1f} at the end; {m['threads']} threads; "
        f"onnxruntime {m['onnxruntime']}, commit {m['commit']}.",
        "",
        f"Command: `{r['command']}` ({_steps(r['steps'])}; forward of one {r['forward']['audio_s']:.0f} s utterance, "
        "fp32 and int8 "
        f"interleaved, 1 warm-up + {len(t[fp])} rounds, medians, ratios = medians of per-round ratios)",
        "",
        "| | fp32 | int8 | int8 / fp32 | target |",
        "|---|---|---|---|---|",
    ]
    for i, (label, ratio, a, b) in enumerate(rows):
        lines.append(f"| {label} | {1e3 * a:.0f} ms | {1e3 * b:.0f} ms | {ratio:.2f}x | "
                     f"{'<= 0.45x' if i == 0 else ''} |")
    tx = r["text"]
    lines += [
        f"| greedy text, {tx['clips']} clips of {min(tx['clip_seconds']):.1f}-{max(tx['clip_seconds']):.0f} s "
        f"({tx['fp32_chars']} characters) | | | CER {100 * tx['cer_int8_vs_fp32']:.2f}% of int8 against fp32 | "
        "<= 2% |",
        f"| max abs log-prob difference, {r['forward']['audio_s']:.0f} s | | | "
        f"{r['log_probs_max_abs_diff']:.3f} | |",
        f"| bundle size (every graph) | {_mb(sz['fp32']['modules_bundle'])} | {_mb(sz['int8']['modules_bundle'])} | "
        f"{sz['int8']['modules_bundle'] / sz['fp32']['modules_bundle']:.2f}x | |",
        INT8_END,
    ]
    return "\n".join(lines)


def import_and_export(args: argparse.Namespace, work: Path, ckpt: Path, bundle: Path, r: dict,
                      *flags: str) -> None:
    """The random model -> ``i3d-edge import`` -> ``i3d-edge export --quantize int8 [flags]``, timed into r."""
    log("building the random model (transformers, offline)")
    r["params"] = build_model(work / "hf", TINY if args.tiny else BASE)
    log("i3d-edge import")
    _, r["steps"]["import_s"] = cli("import", str(work / "hf"), "-o", str(ckpt), "--force")
    log(" ".join(["i3d-edge export --quantize int8", *flags]))
    out, r["steps"]["export_s"] = cli("export", str(ckpt), "-o", str(bundle), "--quantize", "int8", *flags, "--force")
    r["steps"]["export_stdout"] = out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks", help="where IMPORT.md / IMPORT.json go")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--utterance-seconds", type=float, default=10.0)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="a tiny model (smoke test of this script)")
    ap.add_argument("--int8", action="store_true",
                    help="only int8 against fp32: forward time, greedy-text CER, sizes (IMPORT.md's int8 section)")
    ap.add_argument("--clips", type=int, default=8, help="--int8: clips for the int8-vs-fp32 CER")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work: keep the model, checkpoint and bundle of an earlier run there (its step "
                         "times come from OUT/IMPORT.json) and measure again")
    args = ap.parse_args()
    command = "PYTHONPATH=$PWD nice -n 10 python benchmarks/" + " ".join(
        [Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])])
    if args.int8:
        int8_run(args, command)
        return
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="i3d-import-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        r: dict[str, Any] = {"machine": machine(args.threads), "command": command, "steps": {},
                             "model": "tiny" if args.tiny else "wav2vec2-base dimensions"}
        ckpt, bundle = work / "ckpt.pt", work / "bundle"
        if args.reuse and (bundle / "manifest.json").is_file() and (args.out / "IMPORT.json").is_file():
            log(f"reusing {bundle}")
            earlier = json.loads((args.out / "IMPORT.json").read_text())
            r.update(params=earlier["params"], steps=earlier["steps"])
        else:
            import_and_export(args, work, ckpt, bundle, r, "--monolithic")
        out, _ = cli("inspect", str(bundle))
        r["steps"]["inspect"] = out
        r["sizes"] = sizes(bundle)
        long_wav, clip_wav = work / "long.wav", work / "clip2s.wav"
        sf.write(long_wav, speechlike(args.long_seconds, seed=1), SR)
        sf.write(clip_wav, speechlike(2.0, seed=2), SR)
        clips = []
        for i in range(8):
            clips.append(work / f"clip10s_{i}.wav")
            sf.write(clips[-1], speechlike(args.utterance_seconds - 0.1 * i, seed=10 + i), SR)

        log("forward timings")
        r["forward"] = forward_timings(bundle, speechlike(args.utterance_seconds, seed=3), args.threads, args.repeats)

        r["rss"] = {}
        for precision in ("fp32", "int8"):
            log(f"i3d-edge transcribe: {args.long_seconds / 60:.0f} min file, {precision}, fresh process")
            res, _ = fresh(_PEAK, [sys.executable, "-m", "i3d_edge", "transcribe", str(long_wav), "--model",
                                   str(bundle), "--threads", str(args.threads), "--precision", precision,
                                   "--decoder", "greedy", "-f", "json", "-o", str(work / f"long_{precision}.json"),
                                   "--force"])
            if res["rc"]:
                raise SystemExit(f"transcribe failed: {res['stderr']}")
            tr = json.loads((work / f"long_{precision}.json").read_text())
            res.update(audio_s=args.long_seconds, segments=len(tr.get("segments", [])),
                       rtf=res["wall_s"] / args.long_seconds)
            r["rss"][f"long_{precision}"] = res
        log("i3d-edge transcribe: 8 x 10 s clips in one call (shared batches), fp32")
        res, _ = fresh(_PEAK, [sys.executable, "-m", "i3d_edge", "transcribe", *map(str, clips), "--model",
                               str(bundle), "--threads", str(args.threads), "--decoder", "greedy"])
        if res["rc"]:
            raise SystemExit(f"transcribe failed: {res['stderr']}")
        r["rss"]["clips_fp32"] = res | {"audio_s": sum(sf.info(c).duration for c in clips)}

        log(f"cold start: {args.cold_runs} rounds (+1 warm-up) x fp32/int8")
        cold: dict[str, list[dict[str, float]]] = {"fp32": [], "int8": []}
        for rnd in range(args.cold_runs + 1):
            for precision in cold:
                res, wall = fresh(_COLD, [str(bundle), str(args.threads), precision, str(clip_wav)])
                if rnd:
                    cold[precision].append(res | {"process_wall_s": wall})
        r["cold"] = {p: {k: median([x[k] for x in v]) for k in v[0]} for p, v in cold.items()}
        r["cold_runs"] = args.cold_runs
        r["summary"] = summarise(r)
        r["machine"]["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "IMPORT.json"
    if results.is_file() and "int8" in (earlier_results := json.loads(results.read_text())):
        r["int8"] = earlier_results["int8"]  # the --int8 run's entry is kept
    _write(results, json.dumps(r, indent=1) + "\n")
    md = render(r)
    target = args.out / "IMPORT.md"
    old = target.read_text() if target.is_file() else ""
    if INT8_BEGIN in old and INT8_END in old:  # the --int8 run's section is kept, after the title
        head, _, rest = md.partition("\n\n")
        md = f"{head}\n\n{old[old.index(INT8_BEGIN):old.index(INT8_END) + len(INT8_END)]}\n\n{rest}"
    if NOTES in old:  # the hand-written reading of the numbers is kept
        md += "\n" + old[old.index(NOTES):]
    _write(target, md)
    print(md)


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def render(r: dict[str, Any]) -> str:
    s, m, f = r["summary"], r["machine"], r["forward"]
    d = TINY if r["model"] == "tiny" else BASE
    pv = s["per_variant"]
    lines = [
        "# Imported model at wav2vec2-base size: speed and memory",
        "",
        f"Model: a randomly initialised `transformers` Wav2Vec2ForCTC ({r['model']}: {r['params'] / 1e6:.1f} M "
        f"parameters; {d['num_hidden_layers']} layers, hidden {d['hidden_size']}, {d['num_attention_heads']} heads, "
        f"FFN {d['intermediate_size']}, 7-layer conv feature encoder, 32 tokens) saved with "
        "`save_pretrained`, then `i3d-edge import` -> `i3d-edge export --quantize int8 --monolithic` -> "
        "`i3d-edge inspect` -> `i3d-edge transcribe` (greedy decoding). Random weights: speed and memory only, "
        "no accuracy.",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs ({', '.join(m['isa'])}), shared with other jobs (load average "
        f"{m['loadavg'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end); {m['threads']} onnxruntime "
        f"threads; Python {m['python']}, onnxruntime {m['onnxruntime']}, commit {m['commit']}.",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Method: forward passes on one {f['audio_s']:.0f} s utterance, interleaved rounds (1 warm-up + "
        f"{len(f['times']['runtime_fp32'])} timed, shuffled order), medians; ratios are medians of per-round "
        "ratios. Monolithic = the bundle's own `--monolithic` graph (every module, one session, same session "
        "options); the runtime at full depth gives the same log-probs (max |diff| "
        f"{f['parity_max_abs']['fp32']:.1e} fp32, {f['parity_max_abs']['int8']:.1e} int8).",
        "",
        "## Headline",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| runtime at full depth / monolithic graph, fp32 | {s['runtime_vs_monolithic']['fp32']:.3f}x | <= 1.05x |",
        f"| runtime at full depth / monolithic graph, int8 | {s['runtime_vs_monolithic']['int8']:.3f}x | <= 1.05x |",
        f"| forward of {f['audio_s']:.0f} s, fp32 runtime full depth | {pv['runtime_fp32']['median_ms']:.0f} ms | |",
        f"| int8 / fp32 forward time (runtime, full depth) | {s['int8_vs_fp32']['runtime']:.2f}x | |",
        f"| int8 / fp32 bundle size | {_mb(r['sizes']['int8']['modules_bundle'])} / "
        f"{_mb(r['sizes']['fp32']['modules_bundle'])} | |",
        f"| peak RSS, fresh `transcribe` of {r['rss']['long_fp32']['audio_s'] / 60:.0f} min, fp32 / int8 | "
        f"{_mb(r['rss']['long_fp32']['peak_rss'])} / {_mb(r['rss']['long_int8']['peak_rss'])} | bounded |",
        f"| cold start to first transcript of 2 s, fp32 / int8 | {r['cold']['fp32']['process_wall_s']:.2f} s / "
        f"{r['cold']['int8']['process_wall_s']:.2f} s | |",
        "",
        "## Forward time per variant",
        "",
        "| variant | median | frontend | gates | modules | head |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("runtime_fp32", "monolithic_fp32", "runtime_int8", "monolithic_int8"):
        st = pv[key]["stages_ms"]
        cells = [f"{st[k]:.0f} ms" if k in st else "-" for k in ("frontend", "gates", "modules", "head")]
        lines.append(f"| {key.replace('_', ' ')} | {pv[key]['median_ms']:.0f} ms | {' | '.join(cells)} |")
    lines += ["", "## Encoder time vs executed fraction (fp32, threshold 0 + max_modules)", "",
              "| max_modules | executed fraction | module time | vs full | forward | vs full |",
              "|---|---|---|---|---|---|"]
    for row in s["fractions"]:
        lines.append(f"| {row['modules']} of {f['modules_total']} | {row['measured_fraction']:.2f} | "
                     f"{row['modules_ms']:.0f} ms | {row['modules_vs_full']:.2f}x | {row['forward_ms']:.0f} ms | "
                     f"{row['forward_vs_full']:.2f}x |")
    i8 = s["int8_vs_fp32"]
    lines += ["", "## int8 vs fp32", "",
              "| | int8 / fp32 |", "|---|---|",
              f"| forward, runtime full depth | {i8['runtime']:.2f}x |",
              f"| forward, monolithic | {i8['monolithic']:.2f}x |",
              f"| frontend stage (conv feature encoder, kept fp32) | {i8['frontend']:.2f}x |",
              f"| module stage (MatMul weights int8) | {i8['modules']:.2f}x |",
              f"| per-module bundle size | {_mb(r['sizes']['int8']['modules_bundle'])} / "
              f"{_mb(r['sizes']['fp32']['modules_bundle'])} = "
              f"{r['sizes']['int8']['modules_bundle'] / r['sizes']['fp32']['modules_bundle']:.2f}x |",
              f"| monolithic graph size | {_mb(r['sizes']['int8']['monolithic'])} / "
              f"{_mb(r['sizes']['fp32']['monolithic'])} |",
              "", "## Memory and whole-file runs (fresh `i3d-edge transcribe` process each)", "",
              "| input | precision | peak RSS | wall | real-time factor | segments |", "|---|---|---|---|---|---|"]
    for key, label in (("long_fp32", "fp32"), ("long_int8", "int8")):
        x = r["rss"][key]
        lines.append(f"| {x['audio_s'] / 60:.0f} min file | {label} | {_mb(x['peak_rss'])} | {x['wall_s']:.0f} s | "
                     f"{x['rtf']:.3f} | {x['segments']} |")
    x = r["rss"]["clips_fp32"]
    lines.append(f"| 8 clips of 9.3-10 s, one call | fp32 | {_mb(x['peak_rss'])} | {x['wall_s']:.0f} s | "
                 f"{x['wall_s'] / x['audio_s']:.3f} | 8 |")
    lines += ["", f"## Cold start (fresh process, 2 s clip; medians of {r['cold_runs']} rounds after a warm-up "
              "round that fills the page cache)", "",
              "| precision | import | Runtime() | first transcript | in-process total | process wall |",
              "|---|---|---|---|---|---|"]
    for p, c in r["cold"].items():
        lines.append(f"| {p} | {c['import_s']:.2f} s | {c['load_s']:.2f} s | {c['first_transcript_s']:.2f} s | "
                     f"{c['total_s']:.2f} s | {c['process_wall_s']:.2f} s |")
    lines += ["", "## Steps", "",
              f"`i3d-edge import`: {r['steps']['import_s']:.1f} s; `i3d-edge export --quantize int8 --monolithic`: "
              f"{r['steps']['export_s']:.0f} s (graphs, onnxsim, int8, verification).", "",
              "`i3d-edge inspect`:", "", "```", r["steps"]["inspect"].rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
