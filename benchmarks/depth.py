"""Input-dependent depth, measured (issue #19, item 4): does compute follow the input?

For one or more PyTorch checkpoints, on held-out data (the corpus splits ``dev`` = training
voices with unseen text, ``test_voices`` = held-out voices, ``test_fsdd`` = a held-out real
speaker's digits, plus ``ljspeech-dev`` = real read speech the model never saw), greedy CTC
decoding, this script measures:

(a) executed modules per utterance at the threshold (default 0.5): histogram, distinct counts, std;
(b) executed modules against SNR (seeded sample of test utterances, white and pink noise at
    0/5/10/20/40 dB plus the clean original, paired), against duration, and by
    source/voice/split (Spearman rho with p-value);
(c) a threshold sweep (0.05..0.95): average executed fraction against CER and WER, per test set;
(d) matched compute: the model at its threshold against the best static subset of the same
    size (the k modules with the highest mean gate probability on dev) and against the static
    models given, with paired-bootstrap 95% CIs of the WER/CER difference;
(e) how many distinct module sets / counts, and which modules vary;
plus ``i3d-edge analyze`` over ljspeech-dev for every ``--bundle`` given.

Output: ``-o DIR`` (PNGs + ``depth.json``) and ``--report`` (``benchmarks/DEPTH.md``)::

    PYTHONPATH=. nice -n 10 python benchmarks/depth.py --model default=recipes/default_model/ckpt.pt \\
        --corpus /work/data/corpus --ljspeech ../shared/data/ljspeech-dev -o benchmarks/depth/

Efficiency (a 2-core machine): for a global gate predictor the gate probabilities do not depend
on the threshold, so they are computed once (frontend + predictor), and an utterance's output
depends only on its module set: every (utterance, module set) pair is decoded once, whatever
the number of thresholds that select it. Local predictors are run at every threshold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from depth_stats import paired_bootstrap, spearman

from i3d_edge.manifest import json_safe

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test_voices", "test_fsdd")
SNR_LEVELS = (0.0, 5.0, 10.0, 20.0, 40.0)
NOISES = ("white", "pink")
CLEAN = "clean"


class DepthError(Exception):
    """A user-caused problem: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- data


@dataclass
class Utt:
    split: str
    uid: str
    text: str
    path: Path
    source: str
    voice: str
    augment: str
    duration: float = 0.0  # seconds, from the decoded audio
    words: int = 0  # reference words / characters after normalisation
    chars: int = 0
    ref_words: list[str] = field(default_factory=list)
    ref_text: str = ""


def read_meta(split_dir: Path) -> dict[str, tuple[str, str, str]]:
    meta = split_dir / "meta.tsv"
    out: dict[str, tuple[str, str, str]] = {}
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 4:
                out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def load_split(name: str, directory: Path, limit: int, seed: int, default_source: str) -> list[Utt]:
    from i3d_edge.corpus import read_corpus

    items = read_corpus(directory)
    if limit and len(items) > limit:  # a seeded sample, in corpus order (FSDD is sorted by digit)
        keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
        items = [items[i] for i in keep]
    meta = read_meta(directory)
    out = []
    for uid, path, text in items:
        source, voice, augment = meta.get(uid, (default_source, default_source, "none"))
        out.append(Utt(name, uid, text, path, source, voice, augment))
    return out


def add_noise(audio: np.ndarray, kind: str, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white or pink (1/f power) noise at ``snr_db`` relative to the mean power of
    the whole clip. (N,) -> (N,) float32."""
    n = audio.shape[0]
    white = np.asarray(rng.standard_normal(n), dtype=np.float64)  # (N,)
    if kind == "pink":
        spec = np.fft.rfft(white)
        f = np.arange(spec.shape[0], dtype=np.float64)
        f[0] = 1.0
        noise: np.ndarray = np.fft.irfft(spec / np.sqrt(f), n=n)
    else:
        noise = white
    p_sig = float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    p_noise = float(np.mean(noise**2)) + 1e-20
    scale = np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))
    return np.asarray(audio + scale * noise, dtype=np.float32)


# ----------------------------------------------------------------------------- model runs


@dataclass
class RunResult:
    """Per-utterance outcome of one decoding pass."""

    executed: np.ndarray  # (U, G) bool
    probs: np.ndarray  # (U, G) float32 gate probabilities
    word_err: np.ndarray  # (U,) word edits
    char_err: np.ndarray  # (U,) character edits


class ModelRunner:
    """A checkpoint in eval mode, decoding lists of (un-normalised log-mel) feature arrays greedily.

    The conv frontend is most of the CPU cost of a half-depth forward and does not depend on the
    gates, so its output is computed once per utterance and kept (``frontend``); the encoder
    then runs from it with the model's own modules (``encode``), checked against
    ``I3DModel.forward`` on real inputs by ``self_check``.
    """

    def __init__(self, name: str, path: Path, batch_frames: int) -> None:
        import torch

        from i3d_edge.models.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        ckpt.state_dict = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
        self.name, self.path, self.ckpt = name, path, ckpt
        self.model = ckpt.build_model().eval()
        self.cfg = ckpt.model_config
        self.fcfg = ckpt.feature_config
        self.tokens = ckpt.tokens
        self.n_gates = self.cfg.n_gates
        self.names = list(self.cfg.module_names)
        self.batch_frames = batch_frames
        self.torch = torch
        self.forwards = 0  # utterance encoder passes run (cost bookkeeping)
        self._front: dict[int, list[Any]] = {}  # id(feature list) -> per-utterance (T'_i, D) frontend outputs

    def release(self) -> None:
        self._front.clear()

    def batches(self, lengths: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
        order = rows[np.argsort(lengths[rows], kind="stable")]
        out: list[np.ndarray] = []
        cur: list[int] = []
        longest = 0
        for i in order:
            lo = max(longest, int(lengths[i]))
            if cur and lo * (len(cur) + 1) > self.batch_frames:
                out.append(np.array(cur))
                cur, lo = [], int(lengths[i])
            cur.append(int(i))
            longest = lo
        if cur:
            out.append(np.array(cur))
        return out

    def collate(self, feats: list[np.ndarray], idx: np.ndarray) -> tuple[Any, Any]:
        from i3d_edge.features import batch_features, normalize

        x, lens = batch_features([normalize(feats[i], self.fcfg) for i in idx])  # (B, T, F), (B,)
        return self.torch.from_numpy(x), self.torch.from_numpy(lens)

    def frontend(self, feats: list[np.ndarray]) -> list[Any]:
        """Per-utterance frontend outputs (T'_i, D), computed once per feature list. Valid frames
        do not depend on the padding of the batch they were computed in (the convolutions only
        read valid input frames for valid output frames)."""
        key = id(feats)
        if key not in self._front:
            lengths = np.array([f.shape[0] for f in feats])
            out: list[Any] = [None] * len(feats)
            with self.torch.inference_mode():
                for idx in self.batches(lengths, np.arange(len(feats))):
                    x, lens = self.collate(feats, idx)
                    h, hl = self.model.frontend(x, lens)  # (B, T', D), (B,)
                    for b, i in enumerate(idx):
                        out[int(i)] = h[b, : int(hl[b])].clone()
            self._front[key] = out
        return self._front[key]

    def _pad(self, front: list[Any], idx: np.ndarray) -> tuple[Any, Any, Any]:
        from i3d_edge.models.i3d import padding_mask

        torch = self.torch
        lens = torch.tensor([front[i].shape[0] for i in idx], dtype=torch.long)  # (B,)
        x = torch.zeros(len(idx), int(lens.max()), self.cfg.d_model)  # (B, T', D)
        for b, i in enumerate(idx):
            x[b, : front[i].shape[0]] = front[i]
        return x, lens, padding_mask(lens, x.shape[1])

    def gate_probs(self, feats: list[np.ndarray]) -> np.ndarray | None:
        """(U, G) gate probabilities of a global predictor; None for local or no gates (their
        probabilities depend on the executed path)."""
        if self.cfg.gates != "global":
            return None
        front = self.frontend(feats)
        lengths = np.array([f.shape[0] for f in front])
        out = np.zeros((len(front), self.n_gates), dtype=np.float32)
        with self.torch.inference_mode():
            for idx in self.batches(lengths * 4, np.arange(len(front))):
                x, _, valid = self._pad(front, idx)
                out[idx] = self.model.gate(x, valid).sigmoid().numpy()
        return out

    def encode(self, x: Any, valid: Any, threshold: float | None, mask: np.ndarray | None) -> tuple[Any, Any, Any]:
        """I3DModel.forward in eval mode from the frontend output x (B, T', D): -> log-probs
        (B, T', V), executed (B, G) bool, gate probabilities (B, G). ``mask`` (G,) runs exactly
        those modules; else a module runs when p > threshold."""
        from i3d_edge.models.i3d import select_gates

        torch, cfg, model = self.torch, self.cfg, self.model
        b = x.shape[0]
        probs = torch.ones(b, self.n_gates)
        plan = None
        if mask is not None:
            plan = torch.from_numpy(np.broadcast_to(mask, (b, self.n_gates)).copy())
        elif cfg.gates == "global":
            probs = model.gate(x, valid).sigmoid()  # (B, G)
            plan = select_gates(probs, float(threshold))  # type: ignore[arg-type]
        elif cfg.gates == "none":
            plan = torch.ones(b, self.n_gates, dtype=torch.bool)
        executed = torch.zeros(b, self.n_gates, dtype=torch.bool)
        k = len(cfg.layer_kinds)  # gated modules per layer (module_kinds.ARCHITECTURES)
        for i in range(cfg.n_layers):
            if plan is not None:
                g = plan[:, k * i: k * i + k]
            else:  # local predictor: reads this layer's input
                p = model.local_gates[i](x, valid).sigmoid()  # (B, k)
                probs[:, k * i: k * i + k] = p
                g = p > float(threshold)  # type: ignore[arg-type]
            executed[:, k * i: k * i + k] = g
            for j, kind in enumerate(cfg.layer_kinds):
                module = model.module(kind, i)
                on = g[:, j]
                if bool(on.all()):
                    x = module.residual(x, valid)
                elif bool(on.any()):
                    rows = on.nonzero().squeeze(1)
                    x = x.clone()
                    x[rows] = module.residual(x[rows], valid[rows])
        return model.head(x), executed, probs

    def self_check(self, feats: list[np.ndarray], threshold: float, n: int = 6) -> float:
        """Largest |log-prob| difference between ``encode`` from the cached frontend and
        ``I3DModel.forward`` on the first ``n`` utterances (same executed modules required)."""
        front = self.frontend(feats)
        idx = np.arange(min(n, len(feats)))
        with self.torch.inference_mode():
            x, lens = self.collate(feats, idx)
            ref = self.model(x, lens, threshold=threshold)
            h, hl, valid = self._pad(front, idx)
            lp, executed, _ = self.encode(h, valid, threshold, None)
        if not bool((executed == (ref.gates > 0.5)).all()) or not bool((hl == ref.lens).all()):
            raise RuntimeError(f"{self.name}: cached-frontend encoder ran other modules than I3DModel.forward")
        worst = 0.0
        for b in range(len(idx)):
            t = int(hl[b])
            worst = max(worst, float((lp[b, :t] - ref.log_probs[b, :t]).abs().max()))
        if worst > 1e-3:
            raise RuntimeError(f"{self.name}: cached-frontend encoder differs from I3DModel.forward by {worst:.2g}")
        return worst

    def decode(self, feats: list[np.ndarray], refs: list[Utt], rows: np.ndarray, *, threshold: float | None = None,
               mask: np.ndarray | None = None) -> RunResult:
        """Decode ``rows`` at ``threshold``, or with exactly the modules of ``mask`` (G,) bool."""
        from i3d_edge.ctc import greedy_decode
        from i3d_edge.scoring import edit_distance
        from i3d_edge.tokens import normalize_text

        front = self.frontend(feats)
        n = len(rows)
        res = RunResult(np.zeros((n, self.n_gates), bool), np.zeros((n, self.n_gates), np.float32),
                        np.zeros(n, np.int64), np.zeros(n, np.int64))
        pos = {int(r): j for j, r in enumerate(rows)}
        lengths = np.array([f.shape[0] for f in front]) * 4  # batch budget in feature frames
        with self.torch.inference_mode():
            for idx in self.batches(lengths, np.asarray(rows, dtype=np.int64)):
                x, lens, valid = self._pad(front, idx)
                lp, executed, probs = self.encode(x, valid, threshold, mask)
                self.forwards += len(idx)
                log_probs = lp.numpy()  # (B, T', V)
                for b, i in enumerate(idx):
                    j = pos[int(i)]
                    spans = greedy_decode(log_probs[b], int(lens[b]))
                    hyp = normalize_text(self.tokens.decode(s.id for s in spans))
                    ref = refs[i]
                    res.executed[j] = executed[b].numpy()
                    res.probs[j] = probs[b].numpy()
                    res.word_err[j] = edit_distance(ref.ref_words, hyp.split())
                    res.char_err[j] = edit_distance(ref.ref_text, hyp)
        return res


@dataclass
class Sweep:
    """Per-utterance results at every threshold: arrays (n_thresholds, U, ...)."""

    thresholds: list[float]
    executed: np.ndarray  # (K, U, G) bool
    word_err: np.ndarray  # (K, U)
    char_err: np.ndarray  # (K, U)
    probs: np.ndarray  # (U, G) at the default threshold (global: threshold-free)
    decoded: int = 0  # utterance forwards actually run


def run_sweep(runner: ModelRunner, feats: list[np.ndarray], utts: list[Utt], thresholds: list[float],
              default_threshold: float, log: Any) -> Sweep:
    u = len(feats)
    k = len(thresholds)
    executed = np.zeros((k, u, runner.n_gates), bool)
    word_err = np.zeros((k, u), np.int64)
    char_err = np.zeros((k, u), np.int64)
    probs = runner.gate_probs(feats)
    start = runner.forwards
    if probs is not None:
        cache: dict[tuple[int, bytes], tuple[np.ndarray, int, int]] = {}
        mismatch = 0
        for ti, t in enumerate(thresholds):
            want = probs > t  # (U, G) predicted sets
            todo = np.array([i for i in range(u) if (i, want[i].tobytes()) not in cache], dtype=np.int64)
            if todo.size:
                res = runner.decode(feats, utts, todo, threshold=t)
                for j, i in enumerate(todo):
                    got = res.executed[j]
                    mismatch += int(not np.array_equal(got, want[i]))
                    cache[(int(i), want[i].tobytes())] = (got, int(res.word_err[j]), int(res.char_err[j]))
            for i in range(u):
                got, we, ce = cache[(i, want[i].tobytes())]
                executed[ti, i], word_err[ti, i], char_err[ti, i] = got, we, ce
            log(f"  {runner.name}: threshold {t:.2f}: {todo.size} new utterance decodes")
        if mismatch:
            log(f"  {runner.name}: {mismatch} decodes ran another set than the gate-only pass predicted "
                "(probabilities within float error of the threshold); the executed set is what is counted")
    elif runner.cfg.gates == "none":  # every module always runs: one decode serves every threshold
        res = runner.decode(feats, utts, np.arange(u), threshold=default_threshold)
        executed[:], word_err[:], char_err[:] = res.executed, res.word_err, res.char_err
        probs = res.probs
        log(f"  {runner.name}: no gates: {u} utterance decodes for all thresholds")
    else:
        probs = np.zeros((u, runner.n_gates), np.float32)
        for ti, t in enumerate(thresholds):
            res = runner.decode(feats, utts, np.arange(u), threshold=t)
            executed[ti], word_err[ti], char_err[ti] = res.executed, res.word_err, res.char_err
            if abs(t - default_threshold) < 1e-9:
                probs = res.probs
            log(f"  {runner.name}: threshold {t:.2f}: {u} utterance decodes (local gates: no cache)")
    return Sweep(thresholds, executed, word_err, char_err, probs, runner.forwards - start)


# ----------------------------------------------------------------------------- helpers


def rate(err: np.ndarray, units: np.ndarray) -> float:
    total = float(units.sum())
    return float(err.sum()) / total if total > 0 else float("nan")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Plotter:
    def __init__(self, out_dir: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt = plt
        self.out_dir = out_dir
        self.written: list[str] = []

    def save(self, fig: Any, name: str) -> str:
        fig.tight_layout()
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".png", dir=self.out_dir)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=100)
            os.replace(tmp, self.out_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            self.plt.close(fig)
        self.written.append(name)
        return name


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def pct(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def ci_str(ci: dict[str, float]) -> str:
    return f"{100 * ci['diff']:+.1f} [{100 * ci['lo']:+.1f}, {100 * ci['hi']:+.1f}]"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


# ----------------------------------------------------------------------------- main


def parse_named(values: list[str], what: str) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise DepthError(f"{what} {v!r}: expected NAME=PATH")
        if any(c in name for c in "/\\ ") or name in {n for n, _ in out}:
            raise DepthError(f"{what} {v!r}: NAME must be unique and contain no '/', '\\' or spaces")
        out.append((name, Path(path)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CKPT", required=True,
                    help="a PyTorch checkpoint (repeatable)")
    ap.add_argument("--corpus", type=Path, required=True, help="corpus root with dev/, test_voices/, test_fsdd/")
    ap.add_argument("--ljspeech", type=Path, default=None, help="ljspeech-dev directory (transcripts.tsv + audio)")
    ap.add_argument("--real", action="append", default=[], metavar="NAME=DIR",
                    help="another real-speech set in the corpus layout, e.g. an4_test=../shared/data/an4-test "
                         "(repeatable; part of the mixed sets)")
    ap.add_argument("--bundle", action="append", default=[], metavar="NAME=DIR",
                    help="an exported bundle: run `i3d-edge analyze` on ljspeech-dev with it (repeatable)")
    ap.add_argument("-o", "--output", type=Path, default=HERE / "depth", help="directory for PNGs and depth.json")
    ap.add_argument("--report", type=Path, default=HERE / "DEPTH.md", help="markdown report path")
    ap.add_argument("--limit", type=int, default=300, help="at most this many utterances per split (seeded sample)")
    ap.add_argument("--snr-sample", type=int, default=36,
                    help="corpus test utterances (equal share per corpus split) given noisy copies")
    ap.add_argument("--snr-wer", action="store_true",
                    help="also decode the noisy copies for WER (global gates: counts need only the gate pass)")
    ap.add_argument("--threshold", type=float, default=0.5, help="the operating threshold of (a), (b), (d), (e)")
    ap.add_argument("--sweep-step", type=float, default=0.05, help="threshold sweep step (0.05..0.95)")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--batch-frames", type=int, default=12000, help="padded feature frames per batch")
    args = ap.parse_args(argv)
    try:
        return run(args, sys.argv if argv is None else ["benchmarks/depth.py", *argv])
    except DepthError as exc:
        print(f"depth.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"depth.py: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the project's own errors are one line already
        from i3d_edge.errors import I3dEdgeError

        if isinstance(exc, I3dEdgeError):
            print(f"depth.py: error: {exc}", file=sys.stderr)
            return 2
        raise


@dataclass
class Data:
    """The utterances, their features (raw log-mel per frontend setting) and the noisy copies: loaded once."""

    utts: list[Utt]
    splits: list[str]  # split names, in load order
    per_split: dict[str, list[int]]  # split -> utterance indices
    per_take: int  # SNR sample per corpus split
    feats: dict[str, list[np.ndarray]]  # frontend key -> (T, F) log-mel per utterance
    fe_keys: dict[str, str]  # model name -> its frontend key
    snr_feats: dict[str, list[np.ndarray]]  # frontend key -> noisy copies, variant-major: v * n_snr + j
    snr_refs: list[Utt]  # the SNR sample
    n_snr: int
    variants: list[tuple[str, float]]  # (noise kind, SNR dB); clean first
    words: np.ndarray  # (U,) reference words
    chars: np.ndarray  # (U,) reference characters
    durations: np.ndarray  # (U,) seconds
    split_of: np.ndarray  # (U,) split names
    thresholds: list[float]  # the sweep, the operating threshold included
    t_idx: int  # index of the operating threshold


@dataclass
class Study:
    """What the stages of :func:`run` share: the arguments, the models, the data, the report being built."""

    args: argparse.Namespace
    argv: list[str]
    t_start: float  # time.monotonic() at the start
    started: dt.datetime
    load_start: tuple[float, float, float]
    log: Callable[[str], None]
    runners: list[ModelRunner]
    data: Data
    plot: Plotter
    report: dict[str, Any]
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    snr_results: dict[str, RunResult] = field(default_factory=dict)
    static_subset: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rel(self) -> str:
        """The output directory, relative to the report (for links)."""
        return os.path.relpath(self.args.output, self.args.report.parent)


def logger(t_start: float) -> Callable[[str], None]:
    def log(msg: str) -> None:
        print(f"[depth {time.monotonic() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    return log


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """The stages in order: check the arguments, load the data, measure every model, then (a)-(e), the
    bundles' ``analyze``, the done-when checks, and write depth.json and the report."""
    import torch

    torch.set_num_threads(max(1, args.threads))
    t_start = time.monotonic()
    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    log = logger(t_start)
    models, bundles, real_sets = check_args(args)
    out_dir: Path = args.output
    out_dir.mkdir(parents=True, exist_ok=True)
    runners = [ModelRunner(n, p, args.batch_frames) for n, p in models]
    log(f"models: {', '.join(f'{r.name} ({r.cfg.gates}, {r.n_gates} modules)' for r in runners)}")
    data = load_data(args, runners, real_sets, log)
    report: dict[str, Any] = {"models": {}, "splits": {s: len(v) for s, v in data.per_split.items()},
                              "thresholds": data.thresholds, "threshold": args.threshold}
    c = Study(args, argv, t_start, started, load_start, log, runners, data, Plotter(out_dir), report)
    measure_models(c)
    md: dict[str, list[str]] = {}
    md["a"], md["e"] = distributions(c)
    plot_module_rates(c)
    md["snr"], md["ex"] = snr_effect(c)
    md["dur"] = duration_effect(c)
    md["grp"] = group_effect(c)
    md["sweep"] = threshold_sweep(c)
    md["d"] = matched_compute(c)
    md["analyze"] = analyze_bundles(c, bundles)
    md["done"] = done_when(c)
    write_outputs(c, md)
    return 0


Named = list[tuple[str, Path]]  # (NAME, path) pairs of NAME=PATH arguments


def check_args(args: argparse.Namespace) -> tuple[Named, Named, Named]:
    """(models, bundles, real sets) of the arguments, or a DepthError naming what is wrong."""
    if not 0.0 < args.threshold < 1.0:
        raise DepthError(f"--threshold {args.threshold}: must be in (0, 1)")
    if not 0.0 < args.sweep_step <= 0.5:
        raise DepthError(f"--sweep-step {args.sweep_step}: must be in (0, 0.5]")
    if args.limit < 0 or args.snr_sample < 0 or args.resamples < 10 or args.batch_frames < 100:
        raise DepthError("--limit and --snr-sample must be >= 0, --resamples >= 10, --batch-frames >= 100")
    models = parse_named(args.model, "--model")
    bundles = parse_named(args.bundle, "--bundle")
    for _, p in models:
        if not p.is_file():
            raise DepthError(f"{p}: no such checkpoint file")
    for _, p in bundles:
        if not (p / "manifest.json").is_file():
            raise DepthError(f"{p}: not a bundle directory (no manifest.json)")
    for s in SPLITS:
        if not (args.corpus / s / "transcripts.tsv").is_file():
            raise DepthError(f"{args.corpus / s / 'transcripts.tsv'}: missing (the corpus needs {', '.join(SPLITS)})")
    if args.ljspeech is not None and not (args.ljspeech / "transcripts.tsv").is_file():
        raise DepthError(f"{args.ljspeech / 'transcripts.tsv'}: missing")
    real_sets = [(n, Path(p)) for n, _, p in (r.partition("=") for r in args.real)]
    for name, p in real_sets:
        if not name or not (p / "transcripts.tsv").is_file():
            raise DepthError(f"--real {name}={p}: expected NAME=DIR with DIR/transcripts.tsv")
    return models, bundles, real_sets


def load_data(args: argparse.Namespace, runners: list[ModelRunner], real_sets: Named,
              log: Callable[[str], None]) -> Data:
    """Read every split (a seeded sample of ``--limit``), compute the features once per frontend setting,
    and the noisy copies of the SNR sample."""
    from i3d_edge.audio import load_audio
    from i3d_edge.features import log_mel, with_edge_silence
    from i3d_edge.tokens import normalize_text

    utts: list[Utt] = []
    for s in SPLITS:
        utts += load_split(s, args.corpus / s, args.limit, args.seed, s)
    if args.ljspeech is not None:
        utts += load_split("ljspeech", args.ljspeech, args.limit, args.seed, "ljspeech")
    for name, p in real_sets:
        utts += load_split(name, p, args.limit, args.seed, name)
    splits = list(dict.fromkeys(u.split for u in utts))
    for u in utts:
        u.ref_text = normalize_text(u.text)
        u.ref_words = u.ref_text.split()
        u.words, u.chars = len(u.ref_words), len(u.ref_text)
    fe_keys = {}
    for r in runners:  # raw log-mel depends on the frontend settings, not on the normalisation
        key = json.dumps({k: v for k, v in r.fcfg.to_dict().items() if k not in ("mean", "std")}, sort_keys=True)
        fe_keys[r.name] = key
    fe_cfg = {fe_keys[r.name]: r.fcfg for r in runners}
    feats: dict[str, list[np.ndarray]] = {k: [] for k in fe_cfg}
    rng = np.random.default_rng(args.seed)
    per_split = {s: [i for i, u in enumerate(utts) if u.split == s] for s in splits}
    per_take = max(1, args.snr_sample // len(SPLITS)) if args.snr_sample else 0
    snr_rows = sorted(int(i) for s in SPLITS for i in rng.permutation(per_split[s])[:per_take])
    snr_audio: dict[int, np.ndarray] = {}
    rates = {c.sample_rate for c in fe_cfg.values()}
    if len(rates) != 1:
        raise DepthError("the models use different sample rates; run them separately")
    sr = rates.pop()
    for i, u in enumerate(utts):
        audio = load_audio(u.path, target_rate=sr)
        u.duration = audio.shape[0] / sr
        for key, c in fe_cfg.items():
            feats[key].append(log_mel(with_edge_silence(audio, c), c))  # as the runtime reads it
        if i in snr_rows:
            snr_audio[i] = audio
    log(f"{len(utts)} utterances ({', '.join(f'{s} {len(v)}' for s, v in per_split.items())}), "
        f"{sum(u.duration for u in utts) / 60:.1f} min of audio; SNR sample {len(snr_rows)}")
    variants = [(CLEAN, float("inf"))] + [(k, s) for k in NOISES for s in SNR_LEVELS]
    snr_refs = [utts[i] for i in snr_rows]
    snr_feats: dict[str, list[np.ndarray]] = {k: [] for k in fe_cfg}  # variant-major: v * n + j
    for vi, (kind, snr) in enumerate(variants):
        for _j, i in enumerate(snr_rows):
            audio = snr_audio[i] if kind == CLEAN else add_noise(
                snr_audio[i], kind, snr, np.random.default_rng([args.seed, i, vi]))
            for key, c in fe_cfg.items():
                snr_feats[key].append(log_mel(with_edge_silence(audio, c), c))
    n_snr = len(snr_rows)

    words = np.array([u.words for u in utts])
    chars = np.array([u.chars for u in utts])
    durations = np.array([u.duration for u in utts])
    split_of = np.array([u.split for u in utts])
    thresholds = sorted({round(float(t), 4) for t in np.arange(0.05, 0.95 + 1e-9, args.sweep_step)}
                        | {args.threshold})
    t_idx = thresholds.index(args.threshold)
    return Data(utts, splits, per_split, per_take, feats, fe_keys, snr_feats, snr_refs, n_snr, variants, words,
                chars, durations, split_of, thresholds, t_idx)


def measure_models(c: Study) -> None:
    """Per model: the self-check, the threshold sweep, the SNR variants and (d)'s static subset."""
    args, log, runners, report, sweeps, snr_results = c.args, c.log, c.runners, c.report, c.sweeps, c.snr_results
    static_subset, utts, per_split, feats = c.static_subset, c.data.utts, c.data.per_split, c.data.feats
    fe_keys, snr_feats, snr_refs, n_snr = c.data.fe_keys, c.data.snr_feats, c.data.snr_refs, c.data.n_snr
    variants, thresholds, t_idx = c.data.variants, c.data.thresholds, c.data.t_idx
    for r in runners:
        t0 = time.monotonic()
        check = r.self_check(feats[fe_keys[r.name]], args.threshold)
        log(f"{r.name}: cached-frontend encoder matches I3DModel.forward (max |log-prob diff| {check:.1e}); "
            f"threshold sweep over {len(thresholds)} thresholds")
        sw = run_sweep(r, feats[fe_keys[r.name]], utts, thresholds, args.threshold, log)
        sweeps[r.name] = sw
        log(f"{r.name}: SNR variants ({len(variants)} x {n_snr})")
        snr_probs = None if args.snr_wer else r.gate_probs(snr_feats[fe_keys[r.name]])
        if snr_probs is not None:  # global gates: the module counts need only the gate pass
            snr_results[r.name] = RunResult(snr_probs > args.threshold, snr_probs,
                                            np.full(len(snr_probs), -1), np.full(len(snr_probs), -1))
        else:
            snr_results[r.name] = r.decode(snr_feats[fe_keys[r.name]], snr_refs * len(variants),
                                           np.arange(len(variants) * n_snr), threshold=args.threshold)
        # (d) static subset: the k modules with the highest mean gate probability on dev
        counts = sw.executed[t_idx].sum(1)
        k = round(float(counts.mean()))
        dev_rows = np.array(per_split["dev"])
        mean_p = sw.probs[dev_rows].mean(0)
        order = np.argsort(-mean_p, kind="stable")[:k]
        mask = np.zeros(r.n_gates, bool)
        mask[order] = True
        res = r.decode(feats[fe_keys[r.name]], utts, np.arange(len(utts)), mask=mask)
        static_subset[r.name] = {"k": k, "mask": mask, "result": res,
                                 "modules": [r.names[i] for i in np.flatnonzero(mask)]}
        report["models"][r.name] = {"checkpoint": str(r.path), "train_step": r.ckpt.train_state.get("step"),
                                    "gates": r.cfg.gates, "modules_total": r.n_gates,
                                    "model_default_threshold": r.cfg.gate_threshold,
                                    "seconds": round(time.monotonic() - t0, 1), "utterance_forwards": r.forwards,
                                    "sweep_decodes": sw.decoded, "self_check_max_diff": check}
        r.release()
        log(f"{r.name}: done in {time.monotonic() - t0:.0f}s ({r.forwards} utterance forwards)")


def distributions(c: Study) -> tuple[list[str], list[str]]:
    """(a) + (e): executed modules per utterance and module sets at the threshold."""
    args, runners, plot, report, sweeps, utts = c.args, c.runners, c.plot, c.report, c.sweeps, c.data.utts
    splits, split_of, t_idx = c.data.splits, c.data.split_of, c.data.t_idx
    md_a, md_e = [], []
    fig, axes = plot.plt.subplots(len(runners), 1, figsize=(7, 2.6 * len(runners)), squeeze=False)
    for ax, r in zip(axes[:, 0], runners, strict=True):
        sw = sweeps[r.name]
        ex = sw.executed[t_idx]  # (U, G)
        counts = ex.sum(1)
        bins = np.arange(r.n_gates + 2) - 0.5
        bottom = np.zeros(r.n_gates + 1)
        for s in splits:
            h = np.histogram(counts[split_of == s], bins=bins)[0]
            ax.bar(np.arange(r.n_gates + 1), h, bottom=bottom, label=s, width=0.85)
            bottom += h
        ax.set_xlim(-0.5, r.n_gates + 0.5)
        ax.set_title(f"{r.name}: executed modules per utterance at threshold {args.threshold}")
        ax.set_xlabel("executed modules")
        ax.set_ylabel("utterances")
        ax.legend(fontsize=7)
        sets = Counter(row.tobytes() for row in ex)
        rates_all = ex.mean(0)
        varying = [(r.names[g], float(rates_all[g])) for g in range(r.n_gates) if 0.0 < rates_all[g] < 1.0]
        always = [r.names[g] for g in range(r.n_gates) if rates_all[g] == 1.0]
        never = [r.names[g] for g in range(r.n_gates) if rates_all[g] == 0.0]
        per = {}
        for s in [*splits, "mixed"]:
            sel = np.ones(len(utts), bool) if s == "mixed" else split_of == s
            c = counts[sel]
            per[s] = {"utterances": int(sel.sum()), "mean": float(c.mean()), "std": float(c.std()),
                      "min": int(c.min()), "max": int(c.max()), "distinct_counts": int(np.unique(c).size),
                      "distinct_sets": len({row.tobytes() for row in ex[sel]}),
                      "histogram": np.bincount(c, minlength=r.n_gates + 1).tolist()}
        top_sets = [{"utterances": n, "modules": int(np.frombuffer(key, bool).sum()),
                     "skipped": [r.names[g] for g in np.flatnonzero(~np.frombuffer(key, bool))]}
                    for key, n in sets.most_common(5)]
        gp = sw.probs
        sat = float(np.mean(np.minimum(gp, 1 - gp) < 1e-3))
        rep = report["models"][r.name]
        rep["distribution"] = per
        rep["module_sets"] = {"distinct": len(sets), "top": top_sets, "varying": varying, "always": always,
                              "never": never, "execution_rate": dict(zip(r.names, rates_all.round(4).tolist(),
                                                                         strict=True)),
                              "mean_gate_prob": dict(zip(r.names, gp.mean(0).round(4).tolist(), strict=True)),
                              "saturated_fraction": sat}
        m = per["mixed"]
        md_a.append(f"| {r.name} | {m['utterances']} | {m['mean']:.2f} | {m['std']:.2f} | {m['min']}-{m['max']} | "
                    f"{m['distinct_counts']} | {m['distinct_sets']} | "
                    + " / ".join(f"{per[s]['mean']:.1f}±{per[s]['std']:.1f}" for s in splits) + " |")
        md_e.append(f"| {r.name} | {len(sets)} | {m['distinct_counts']} | {len(varying)} | "
                    + (", ".join(f"{n} ({100 * v:.0f}%)" for n, v in varying[:12])
                       + (" ..." if len(varying) > 12 else "") if varying else "none")
                    + f" | {len(never)} | {100 * sat:.0f}% |")
    plot.save(fig, "hist_modules.png")
    return md_a, md_e


def plot_module_rates(c: Study) -> None:
    """Module execution rate by split (+ noisy copies) per model."""
    args, runners, plot, sweeps, snr_results, splits = c.args, c.runners, c.plot, c.sweeps, c.snr_results, c.data.splits
    n_snr, variants, split_of, t_idx = c.data.n_snr, c.data.variants, c.data.split_of, c.data.t_idx
    fig, axes = plot.plt.subplots(len(runners), 1, figsize=(9, 2.2 + 0.3 * (len(splits) + 3)) if len(runners) == 1
                                  else (9, (2.2 + 0.3 * (len(splits) + 3)) * len(runners)), squeeze=False)
    for ax, r in zip(axes[:, 0], runners, strict=True):
        ex = sweeps[r.name].executed[t_idx]
        rows_, labels = [], []
        for s in splits:
            rows_.append(ex[split_of == s].mean(0))
            labels.append(s)
        sr_ = snr_results[r.name].executed.reshape(len(variants), n_snr, r.n_gates)
        for vi, (kind, snr) in enumerate(variants):
            if kind == CLEAN or snr in (0.0, 20.0):
                rows_.append(sr_[vi].mean(0))
                labels.append("sample clean" if kind == CLEAN else f"sample {kind} {snr:g} dB")
        im = ax.imshow(np.array(rows_), aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xticks(range(r.n_gates), r.names, rotation=90, fontsize=6)
        ax.set_title(f"{r.name}: execution rate per module at threshold {args.threshold}")
        fig.colorbar(im, ax=ax)
    plot.save(fig, "module_rates.png")


def snr_effect(c: Study) -> tuple[list[str], list[str]]:
    """(b) executed modules against SNR, paired clean/noisy, and the README examples."""
    args, runners, plot, report, sweeps, snr_results = c.args, c.runners, c.plot, c.report, c.sweeps, c.snr_results
    utts, snr_refs, n_snr, variants, t_idx = c.data.utts, c.data.snr_refs, c.data.n_snr, c.data.variants, c.data.t_idx
    md_snr: list[str] = []
    md_ex: list[str] = []
    fig, axes = plot.plt.subplots(2, len(runners), figsize=(4.5 * len(runners), 6), squeeze=False)
    for ci_, r in enumerate(runners):
        res = snr_results[r.name]
        cnt = res.executed.sum(1).reshape(len(variants), n_snr)  # (V, n)
        has_wer = bool((res.word_err >= 0).all())
        we = res.word_err.reshape(len(variants), n_snr).astype(float)
        if not has_wer:
            we[:] = np.nan  # not decoded (global gates without --snr-wer)
        w_snr = np.array([u.words for u in snr_refs])
        clean = cnt[0]
        rows_md = []
        snr_json: dict[str, Any] = {"sample": n_snr, "clean_mean": float(clean.mean()),
                                    "clean_wer": rate(we[0], w_snr), "variants": {}}
        all_snr, all_cnt = [clean.astype(float)], [np.full(n_snr, 100.0)]
        for vi, (kind, snr) in enumerate(variants[1:], start=1):
            c = cnt[vi]
            ci = paired_bootstrap(c, clean, resamples=args.resamples, seed=args.seed).to_dict()
            snr_json["variants"][f"{kind}_{snr:g}dB"] = {
                "mean": float(c.mean()), "diff_vs_clean": ci, "more": int((c > clean).sum()),
                "fewer": int((c < clean).sum()), "wer": rate(we[vi], w_snr)}
            rows_md.append((kind, snr, c.mean(), ci, int((c > clean).sum()), int((c < clean).sum()),
                            rate(we[vi], w_snr)))
            all_snr.append(c.astype(float))
            all_cnt.append(np.full(n_snr, snr))
        # Spearman over all variants: modules vs SNR (clean ranked highest, as 100 dB)
        rho = spearman(np.concatenate(all_cnt), np.concatenate(all_snr)).to_dict()
        snr_json["spearman_modules_vs_snr"] = rho
        report["models"][r.name]["snr"] = snr_json
        # examples for the README: the clean/noisy pair whose module counts differ most
        diffs = cnt[1:] - clean[None, :]  # (V-1, n)
        vj = np.unravel_index(int(np.argmax(np.abs(diffs))), diffs.shape)
        ex_u = snr_refs[int(vj[1])]
        kind_, snr_ = variants[int(vj[0]) + 1]
        ex_counts = sweeps[r.name].executed[t_idx].sum(1)
        lo_i, hi_i = int(np.argmin(ex_counts)), int(np.argmax(ex_counts))
        examples = {"noisy_pair": {"id": ex_u.uid, "split": ex_u.split, "duration": round(ex_u.duration, 2),
                                   "clean_modules": int(clean[vj[1]]), "noise": f"{kind_} {snr_:g} dB",
                                   "noisy_modules": int(cnt[vj[0] + 1, vj[1]]), "text": ex_u.ref_text[:80]},
                    "fewest": {"id": utts[lo_i].uid, "split": utts[lo_i].split, "modules": int(ex_counts[lo_i]),
                               "duration": round(utts[lo_i].duration, 2), "text": utts[lo_i].ref_text[:80]},
                    "most": {"id": utts[hi_i].uid, "split": utts[hi_i].split, "modules": int(ex_counts[hi_i]),
                             "duration": round(utts[hi_i].duration, 2), "text": utts[hi_i].ref_text[:80]}}
        report["models"][r.name]["examples"] = examples
        md_ex.append(f"- {r.name}: fewest modules {examples['fewest']['modules']} on `{examples['fewest']['id']}` "
                     f"({examples['fewest']['duration']} s, \"{examples['fewest']['text']}\"); most "
                     f"{examples['most']['modules']} on `{examples['most']['id']}` ({examples['most']['duration']} s, "
                     f"\"{examples['most']['text']}\"); largest clean/noisy change: `{ex_u.uid}` clean "
                     f"{examples['noisy_pair']['clean_modules']} -> {examples['noisy_pair']['noise']} "
                     f"{examples['noisy_pair']['noisy_modules']} modules.")
        for kind, snr, mean, ci, more, fewer, w in rows_md:
            md_snr.append(f"| {r.name} | {kind} {snr:g} dB | {mean:.2f} | {clean.mean():.2f} | "
                          f"{ci['diff']:+.2f} [{ci['lo']:+.2f}, {ci['hi']:+.2f}] | {more} / {fewer} | {pct(w)} |")
        md_snr.append(f"| {r.name} | Spearman(modules, SNR), clean = +inf | rho {fmt(rho['rho'])} | "
                      f"p {fmt_p(rho['p'])} | n {rho['n']} | | clean {pct(snr_json['clean_wer'])} |")
        ax, ax2 = axes[0, ci_], axes[1, ci_]
        if not has_wer:
            ax2.text(0.5, 0.5, "WER not decoded\n(--snr-wer)", ha="center", va="center", transform=ax2.transAxes)
        xs = [*list(SNR_LEVELS), 50.0]
        for kind, style in zip(NOISES, ("o-", "s--"), strict=True):
            ys = [snr_json["variants"][f"{kind}_{s:g}dB"]["mean"] for s in SNR_LEVELS] + [clean.mean()]
            ws = [snr_json["variants"][f"{kind}_{s:g}dB"]["wer"] for s in SNR_LEVELS] + [snr_json["clean_wer"]]
            ax.plot(xs, ys, style, label=f"{kind} noise")
            ax2.plot(xs, [100 * w for w in ws], style, label=f"{kind} noise")
        for a, yl in ((ax, "mean executed modules"), (ax2, "WER %")):
            a.set_xticks(xs, [f"{s:g}" for s in SNR_LEVELS] + ["clean"])
            a.set_xlabel("SNR (dB)")
            a.set_ylabel(yl)
            a.legend(fontsize=7)
        ax.set_ylim(0, r.n_gates)
        ax.set_title(f"{r.name}: modules vs SNR (n={n_snr}, paired)", fontsize=9)
    plot.save(fig, "modules_vs_snr.png")
    return md_snr, md_ex


def duration_effect(c: Study) -> list[str]:
    """(b) executed modules against duration."""
    runners, plot, report, sweeps, utts, splits = c.runners, c.plot, c.report, c.sweeps, c.data.utts, c.data.splits
    durations, split_of, t_idx = c.data.durations, c.data.split_of, c.data.t_idx
    md_dur: list[str] = []
    fig, axes = plot.plt.subplots(1, len(runners), figsize=(4.8 * len(runners), 3.6), squeeze=False)
    for ax, r in zip(axes[0], runners, strict=True):
        counts = sweeps[r.name].executed[t_idx].sum(1)
        dur_json: dict[str, Any] = {}
        for s in [*splits, "mixed"]:
            sel = np.ones(len(utts), bool) if s == "mixed" else split_of == s
            dur_json[s] = spearman(durations[sel], counts[sel].astype(float)).to_dict()
            md_dur.append(f"| {r.name} | {s} | {dur_json[s]['n']} | {fmt(dur_json[s]['rho'])} | "
                          f"{fmt_p(dur_json[s]['p'])} | {durations[sel].min():.1f}-{durations[sel].max():.1f} s |")
        report["models"][r.name]["duration"] = dur_json
        jitter = np.random.default_rng(1).uniform(-0.2, 0.2, len(counts))
        for s in splits:
            sel = split_of == s
            ax.scatter(durations[sel], counts[sel] + jitter[sel], s=8, alpha=0.6, label=s)
        ax.set_xscale("log")
        ax.set_xlabel("duration (s, log)")
        ax.set_ylabel("executed modules (jittered)")
        ax.set_ylim(-0.5, r.n_gates + 0.5)
        ax.set_title(f"{r.name}: rho={fmt(dur_json['mixed']['rho'], 2)}", fontsize=9)
        ax.legend(fontsize=7)
    plot.save(fig, "modules_vs_duration.png")
    return md_dur


def group_effect(c: Study) -> list[str]:
    """(b) executed modules by split / source / voice."""
    runners, plot, report, sweeps, utts, words = c.runners, c.plot, c.report, c.sweeps, c.data.utts, c.data.words
    t_idx = c.data.t_idx
    md_grp: list[str] = []
    fig, axes = plot.plt.subplots(len(runners), 1, figsize=(9, 3.2 * len(runners)), squeeze=False)
    for ax, r in zip(axes[:, 0], runners, strict=True):
        counts = sweeps[r.name].executed[t_idx].sum(1).astype(float)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(utts):
            groups[f"{u.split}/{u.source}/{u.voice}"].append(i)
        grp_json = {}
        for g, idx in sorted(groups.items()):
            c = counts[idx]
            grp_json[g] = {"n": len(idx), "mean": float(c.mean()), "std": float(c.std())}
        report["models"][r.name]["groups"] = grp_json
        # table: by split/source (voices are many in dev; aggregated by source there)
        by_src: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(utts):
            parts = [u.split, u.source] + ([] if u.split == "dev" else [u.voice])
            by_src[" / ".join(dict.fromkeys(parts))].append(i)
        for g, idx in sorted(by_src.items()):
            c = counts[idx]
            w = rate(sweeps[r.name].word_err[t_idx][idx], words[idx])
            md_grp.append(f"| {r.name} | {g} | {len(idx)} | {c.mean():.2f} | {c.std():.2f} | {pct(w)} |")
        names_ = sorted(by_src)
        ax.boxplot([counts[by_src[g]] for g in names_], showmeans=True)
        ax.set_xticks(range(1, len(names_) + 1), names_, rotation=20, fontsize=7, ha="right")
        ax.set_ylabel("executed modules")
        ax.set_ylim(-0.5, r.n_gates + 0.5)
        ax.set_title(f"{r.name}: executed modules by split / source / voice", fontsize=9)
    plot.save(fig, "modules_by_source.png")
    return md_grp


def threshold_sweep(c: Study) -> list[str]:
    """(c) the threshold sweep: executed fraction against WER/CER, monotonicity."""
    args, runners, plot, report, sweeps, utts = c.args, c.runners, c.plot, c.report, c.sweeps, c.data.utts
    splits, words, chars, split_of = c.data.splits, c.data.words, c.data.chars, c.data.split_of
    thresholds = c.data.thresholds
    md_sweep = []
    sweep_json: dict[str, Any] = {}
    for r in runners:
        sw = sweeps[r.name]
        sweep_json[r.name] = {}
        for s in [*splits, "mixed"]:
            sel = np.ones(len(utts), bool) if s == "mixed" else split_of == s
            pts = []
            for ti, t in enumerate(thresholds):
                pts.append({"threshold": t, "executed_fraction": float(sw.executed[ti][sel].mean()),
                            "modules": float(sw.executed[ti][sel].sum(1).mean()),
                            "wer": rate(sw.word_err[ti][sel], words[sel]),
                            "cer": rate(sw.char_err[ti][sel], chars[sel])})
            sweep_json[r.name][s] = pts
        # monotonicity on mixed: distinct compute points, consecutive paired bootstrap of WER
        pts = sweep_json[r.name]["mixed"]
        distinct: dict[float, int] = {}
        for ti, pnt in enumerate(pts):
            distinct.setdefault(round(pnt["executed_fraction"], 3), ti)
        fr = sorted(distinct)
        rises = []
        for lo_f, hi_f in itertools.pairwise(fr):
            a, b = distinct[hi_f], distinct[lo_f]
            ci = paired_bootstrap(sw.word_err[a], sw.word_err[b], words, resamples=args.resamples,
                                  seed=args.seed).to_dict()
            rises.append({"from": lo_f, "to": hi_f, "wer_change": ci, "significant_rise": bool(ci["lo"] > 0)})
        in_range = [f for f in fr if 0.3 <= f <= 1.0]
        report["models"][r.name]["sweep_check"] = {
            "distinct_compute_points": len(fr), "distinct_points_30_100": len(in_range),
            "steps": rises, "significant_rises": sum(bool(x["significant_rise"]) for x in rises)}
        for s in [*splits, "mixed"]:
            p_ = sweep_json[r.name][s]
            md_sweep.append(f"| {r.name} | {s} | " + " | ".join(
                f"{100 * q['executed_fraction']:.0f}% {pct(q['wer'])}/{pct(q['cer'])}"
                for q in p_ if round(q["threshold"] * 10, 6) % 1 == 0 or q["threshold"] in (0.05, 0.95)) + " |")
    report["sweep"] = sweep_json
    for s in [*splits, "mixed"]:
        fig, axes = plot.plt.subplots(1, 2, figsize=(10, 3.8))
        for r in runners:
            p_ = sweep_json[r.name][s]
            xs = [100 * q["executed_fraction"] for q in p_]
            for ax, key in zip(axes, ("wer", "cer"), strict=True):
                line = ax.plot(xs, [100 * q[key] for q in p_], "o-", ms=3, label=r.name)[0]
                d = next(q for q in p_ if q["threshold"] == args.threshold)
                ax.plot([100 * d["executed_fraction"]], [100 * d[key]], "*", ms=12, color=line.get_color())
        for ax, key in zip(axes, ("WER", "CER"), strict=True):
            ax.set_xlabel("average executed modules (% of all)")
            ax.set_ylabel(f"{key} % (greedy)")
            ax.set_xlim(0, 102)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        axes[0].set_title(f"{s}: threshold sweep {thresholds[0]}..{thresholds[-1]} (star: {args.threshold})",
                          fontsize=9)
        plot.save(fig, f"sweep_{s}.png")
    return md_sweep


def matched_compute(c: Study) -> list[str]:
    """(d) each model against its static subset of the same size and the static models."""
    args, runners, report, sweeps, static_subset = c.args, c.runners, c.report, c.sweeps, c.static_subset
    utts, splits, words, chars, split_of = c.data.utts, c.data.splits, c.data.words, c.data.chars, c.data.split_of
    t_idx = c.data.t_idx
    md_d = []
    static_models = [r for r in runners
                     if report["models"][r.name]["module_sets"]["distinct"] == 1]
    for r in runners:
        sw = sweeps[r.name]
        st = static_subset[r.name]
        dyn_we, dyn_ce = sw.word_err[t_idx], sw.char_err[t_idx]
        dyn_mod = sw.executed[t_idx].sum(1)
        refs_: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = [
            (f"static top-{st['k']} of {r.name}", st["result"].word_err, st["result"].char_err,
             st["result"].executed.sum(1))]
        for o in static_models:
            if o.name != r.name:
                osw = sweeps[o.name]
                refs_.append((o.name, osw.word_err[t_idx], osw.char_err[t_idx], osw.executed[t_idx].sum(1)))
        comps: list[dict[str, Any]] = []
        for ref_name, we, ce, mods in refs_:
            for s in [*splits, "mixed"]:
                sel = np.ones(len(utts), bool) if s == "mixed" else split_of == s
                wci = paired_bootstrap(dyn_we[sel], we[sel], words[sel], resamples=args.resamples,
                                       seed=args.seed).to_dict()
                cci = paired_bootstrap(dyn_ce[sel], ce[sel], chars[sel], resamples=args.resamples,
                                       seed=args.seed).to_dict()
                comps.append({"reference": ref_name, "split": s, "modules": float(dyn_mod[sel].mean()),
                              "reference_modules": float(mods[sel].mean()),
                              "wer": rate(dyn_we[sel], words[sel]), "reference_wer": rate(we[sel], words[sel]),
                              "cer": rate(dyn_ce[sel], chars[sel]), "reference_cer": rate(ce[sel], chars[sel]),
                              "wer_diff": wci, "cer_diff": cci})
                md_d.append(f"| {r.name} | {ref_name} | {s} | {dyn_mod[sel].mean():.1f} vs {mods[sel].mean():.1f} | "
                            f"{pct(comps[-1]['wer'])} vs {pct(comps[-1]['reference_wer'])} | {ci_str(wci)} | "
                            f"{pct(comps[-1]['cer'])} vs {pct(comps[-1]['reference_cer'])} | {ci_str(cci)} |")
        report["models"][r.name]["matched_compute"] = {"k": st["k"], "static_modules": st["modules"],
                                                       "comparisons": comps}
    return md_d


def analyze_bundles(c: Study, bundles: Named) -> list[str]:
    """``i3d-edge analyze`` on ljspeech-dev with every bundle given."""
    args, log, out_dir, report, rel = c.args, c.log, c.args.output, c.report, c.rel
    analyze_md = []
    report["analyze"] = {}
    for name, bundle in bundles:
        if args.ljspeech is None:
            analyze_md.append(f"- {name}: skipped (no --ljspeech)")
            continue
        dest = out_dir / f"analyze_{name}"
        cmd = [sys.executable, "-m", "i3d_edge", "analyze", str(bundle), str(args.ljspeech), "-o", str(dest),
               "--threshold", str(args.threshold), "--threads", str(max(1, args.threads))]
        log(f"analyze: {shlex.join(cmd)}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        except subprocess.TimeoutExpired:
            raise DepthError(f"{bundle}: i3d-edge analyze did not finish in 30 minutes") from None
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise DepthError(f"{bundle}: i3d-edge analyze failed: {tail}")
        summary = json.loads((dest / "summary.json").read_text())
        counts_a = np.array([u["modules_executed"] for u in summary["per_utterance"]])
        report["analyze"][name] = {"command": "i3d-edge " + shlex.join(cmd[3:]),
                                   "utterances": summary["utterances"],
                                   "mean_modules": summary["mean_modules_executed"],
                                   "std_modules": float(counts_a.std()),
                                   "distinct_counts": int(np.unique(counts_a).size),
                                   "corr_modules_duration": summary["corr_modules_duration"],
                                   "corr_modules_snr": summary["corr_modules_snr"],
                                   "plots": [f"analyze_{name}/{p}" for p in summary.get("plots", [])]}
        a = report["analyze"][name]
        analyze_md.append(
            f"- **{name}** (`{a['command']}`): {a['utterances']} clips, {a['mean_modules']:.2f} ± "
            f"{a['std_modules']:.2f}"
            f" of {summary['modules_total']} modules, {a['distinct_counts']} distinct counts; Pearson r with duration "
            f"{fmt(a['corr_modules_duration'], 2)}, with blind SNR {fmt(a['corr_modules_snr'], 2)}. Plots: "
            + ", ".join(f"[{Path(p).name}]({rel}/{p})" for p in a["plots"]))
    if not bundles:
        analyze_md.append("- skipped: no `--bundle NAME=DIR` given (export a checkpoint with `i3d-edge export` and "
                          "pass it to run `i3d-edge analyze` over ljspeech-dev).")
    return analyze_md


def done_when(c: Study) -> list[str]:
    """The done-when checks of issue #19, per model."""
    args, runners, report = c.args, c.runners, c.report
    md_done = []
    for r in runners:
        m = report["models"][r.name]
        mix = m["distribution"]["mixed"]
        sc = m["sweep_check"]
        snr = m["snr"]
        noisy_means = [v["mean"] for v in snr["variants"].values()]
        comp = next(c for c in m["matched_compute"]["comparisons"] if c["split"] == "mixed")
        static = m["module_sets"]["distinct"] == 1
        checks = [
            (f">= 4 distinct counts and std >= 1.5 at {args.threshold}",
             mix["distinct_counts"] >= 4 and mix["std"] >= 1.5,
             f"{mix['distinct_counts']} counts, std {mix['std']:.2f}"),
            (">= 5 distinct compute points in 30-100%", sc["distinct_points_30_100"] >= 5,
             f"{sc['distinct_points_30_100']} points"),
            ("WER does not rise significantly as compute rises", sc["significant_rises"] == 0,
             f"{sc['significant_rises']} of {len(sc['steps'])} steps rise (95% CI above 0)"),
            ("noisy copies run more modules than clean (mean over levels)",
             float(np.mean(noisy_means)) > snr["clean_mean"],
             f"noisy {float(np.mean(noisy_means)):.2f} vs clean {snr['clean_mean']:.2f}"),
            (f"no worse than its static top-{m['matched_compute']['k']} subset (WER CI low <= 0)",
             comp["wer_diff"]["lo"] <= 0.0,
             "static model: its own subset (identical)" if static else ci_str(comp["wer_diff"]) + " WER points"),
        ]
        m["done_when"] = [{"check": name, "pass": bool(ok), "value": v} for name, ok, v in checks]
        for name, ok, v in checks:
            md_done.append(f"| {r.name} | {name} | {'yes' if ok else 'no'} | {v} |")
    return md_done


def write_outputs(c: Study, md: dict[str, list[str]]) -> None:
    """depth.json and the markdown report (each written atomically)."""
    args, argv, log, t_start, started, load_start = c.args, c.argv, c.log, c.t_start, c.started, c.load_start
    out_dir, runners, plot, report, sweeps = c.args.output, c.runners, c.plot, c.report, c.sweeps
    static_subset, rel, utts, splits, per_split = c.static_subset, c.rel, c.data.utts, c.data.splits, c.data.per_split
    per_take, n_snr, durations, thresholds = c.data.per_take, c.data.n_snr, c.data.durations, c.data.thresholds
    t_idx = c.data.t_idx
    md_a, md_e, md_snr, md_ex, md_dur = md["a"], md["e"], md["snr"], md["ex"], md["dur"]
    md_grp, md_sweep, md_d, analyze_md, md_done = md["grp"], md["sweep"], md["d"], md["analyze"], md["done"]
    finished = dt.datetime.now(dt.timezone.utc)
    report.update({
        "command": "PYTHONPATH=. nice -n 10 python " + shlex.join(argv),
        "machine": machine(), "threads": args.threads, "load_average_start": load_start,
        "load_average_end": os.getloadavg(), "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"), "wall_seconds": round(time.monotonic() - t_start, 1),
        "plots": plot.written, "seed": args.seed, "resamples": args.resamples, "snr_sample": n_snr,
        "snr_levels": list(SNR_LEVELS), "noises": list(NOISES), "limit": args.limit,
        "per_utterance": {"ids": [u.uid for u in utts], "split": [u.split for u in utts],
                          "duration": durations.round(3).tolist(),
                          "modules": {r.name: sweeps[r.name].executed[t_idx].sum(1).tolist() for r in runners}},
    })
    atomic_write(out_dir / "depth.json", json.dumps(json_safe(report), indent=1, allow_nan=False))
    mach = report["machine"]
    lines = [
        "# Input-dependent depth, measured (issue #19)",
        "",
        f"Generated by `benchmarks/depth.py` on {finished:%Y-%m-%d %H:%M} UTC, {report['wall_seconds'] / 60:.1f} min "
        f"wall, {mach['cores']}-core {mach['cpu']} shared with other jobs (load average {load_start[0]:.1f} at start, "
        f"{report['load_average_end'][0]:.1f} at end), torch {mach['torch']}, {args.threads} thread(s):",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        "PyTorch checkpoints, eval mode, **greedy CTC decoding** (no LM: WER here is higher than the model "
        "card's LM numbers), scored with `i3d_edge.scoring` (corpus-level WER/CER after normalisation). "
        f"Test sets (a seeded sample of at most {args.limit} per split): "
        + ", ".join(f"`{s}` {len(v)}" for s, v in per_split.items())
        + "; `dev` = training voices with unseen text, `test_voices` = held-out voices, `test_fsdd` = a "
          "held-out real speaker's digits, `ljspeech` = real read speech never seen. **mixed** = all of them "
          f"together. Operating threshold {args.threshold}. Numbers in every table: `depth/depth.json`.",
        "",
        "Models: " + "; ".join(f"**{r.name}** = `{r.path}` (training step {r.ckpt.train_state.get('step', '?')}, "
                                f"{r.cfg.gates} gates, {r.n_gates} modules, "
                                f"{report['models'][r.name]['utterance_forwards']} utterance forwards in "
                                f"{report['models'][r.name]['seconds']:.0f} s)" for r in runners) + ".",
        "",
        "## Done-when checks of issue #19 (measured here)",
        "",
        "| model | check | met | value |",
        "|---|---|---|---|",
        *md_done,
        "",
        f"## (a) Executed modules per utterance at threshold {args.threshold}",
        "",
        f"![histogram]({rel}/hist_modules.png)",
        "",
        "| model | utts | mean | std | range | distinct counts | distinct sets | mean±std per split ("
        + " / ".join(splits) + ") |",
        "|---|---|---|---|---|---|---|---|",
        *md_a,
        "",
        "## (b) What drives the gates",
        "",
        f"**SNR** (paired): {n_snr} test utterances ({per_take} per corpus split: {' / '.join(SPLITS)}; seeded), "
        "each clean and with white and pink "
        "noise at 0, 5, 10, 20 and 40 dB (SNR against the clip's mean power, silence included). Difference = noisy - "
        f"clean executed modules, mean with paired-bootstrap 95% CI ({args.resamples} resamples); more / fewer = "
        "utterances whose noisy copy ran more / fewer modules than their clean original.",
        "",
        f"![snr]({rel}/modules_vs_snr.png)",
        "",
        "| model | noise | mean modules | clean | difference [95% CI] | more / fewer | WER % |",
        "|---|---|---|---|---|---|---|",
        *md_snr,
        "",
        "**Duration** (Spearman rho of executed modules against duration, two-sided p from the t approximation):",
        "",
        f"![duration]({rel}/modules_vs_duration.png)",
        "",
        "| model | split | n | rho | p | durations |",
        "|---|---|---|---|---|---|",
        *md_dur,
        "",
        "**Source / voice** (dev aggregated by TTS engine; WER greedy at the operating threshold):",
        "",
        f"![by source]({rel}/modules_by_source.png)",
        "",
        "| model | split / source / voice | n | mean modules | std | WER % |",
        "|---|---|---|---|---|---|",
        *md_grp,
        "",
        "## (c) Threshold sweep",
        "",
        f"Thresholds {thresholds[0]}..{thresholds[-1]} (step {args.sweep_step}); each cell: average executed "
        "modules (% of all) and WER/CER % (greedy), at thresholds 0.05, 0.1, 0.2, ..., 0.9, 0.95 (all points in "
        "the plots and the JSON).",
        "",
        *[f"![sweep {s}]({rel}/sweep_{s}.png)" for s in [*splits, "mixed"]],
        "",
        "| model | set | " + " | ".join(
            f"t={t:g}" for t in thresholds if round(t * 10, 6) % 1 == 0 or t in (0.05, 0.95)) + " |",
        "|---|---|" + "---|" * len([t for t in thresholds if round(t * 10, 6) % 1 == 0 or t in (0.05, 0.95)]),
        *md_sweep,
        "",
        "Monotonicity on mixed (consecutive distinct compute points, paired bootstrap of the WER change): "
        + "; ".join(f"{r.name}: {report['models'][r.name]['sweep_check']['distinct_compute_points']} distinct points, "
                    f"{report['models'][r.name]['sweep_check']['distinct_points_30_100']} in 30-100%, "
                    f"{report['models'][r.name]['sweep_check']['significant_rises']} significant WER rises"
                    for r in runners) + ".",
        "",
        "## (d) Matched compute",
        "",
        f"Each model at threshold {args.threshold} against (1) its best static subset of the same size: k = round(mean "
        "executed modules on mixed), the k modules with the highest mean gate probability on `dev`, run for every "
        "utterance (`module_mask`, no fine-tuning); (2) every static model given (one module set for all inputs). "
        f"Difference = model - reference, percentage points, paired bootstrap over utterances ({args.resamples} "
        "resamples, 95% CI); negative = the model is better.",
        "",
        "| model | reference | set | modules (model vs ref) | WER % | WER diff [95% CI] | CER % | CER diff [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
        *md_d,
        "",
        "Static subsets: " + "; ".join(f"{r.name} top-{static_subset[r.name]['k']}: "
                                       + ", ".join(static_subset[r.name]["modules"]) for r in runners) + ".",
        "",
        f"## (e) Module sets at threshold {args.threshold}",
        "",
        f"![module rates]({rel}/module_rates.png)",
        "",
        "Varying = run for some inputs and skipped for others (execution rate strictly between 0 and 1 on mixed); "
        "saturated = share of gate probabilities within 1e-3 of 0 or 1 (a saturated predictor cannot follow the "
        "threshold).",
        "",
        "| model | distinct sets | distinct counts | varying modules | which (execution rate) | never run | "
        "saturated |",
        "|---|---|---|---|---|---|---|",
        *md_e,
        "",
        f"Examples (threshold {args.threshold}; for the README):",
        "",
        *md_ex,
        "",
        "## `i3d-edge analyze` on ljspeech-dev",
        "",
        *analyze_md,
        "",
    ]
    atomic_write(args.report, "\n".join(lines))
    log(f"wrote {args.report} and {out_dir}/depth.json + {len(plot.written)} plots "
        f"in {time.monotonic() - t_start:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
