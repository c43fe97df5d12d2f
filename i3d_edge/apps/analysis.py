"""Gate analysis for ``i3d-edge analyze``: which modules run, for which inputs (torch-free).

The numbers come from the runtime; plots need the optional ``plot`` extra (matplotlib), which
is imported only when plotting. Outputs in OUTDIR:

- ``gates_heatmap.png``: gate probabilities, utterances x modules (execution marked);
- ``execution_rate.png``: per-module execution rate;
- ``modules_vs_duration.png`` and ``modules_vs_snr.png``: executed modules per utterance;
- ``summary.json``: every number behind the plots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import load_audio
from ..corpus import CORPUS_AUDIO_EXTENSIONS
from ..errors import ConfigError, I3dEdgeError
from ..extras import install_hint

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["UtteranceGates", "analyze", "collect_audio", "estimate_snr_db"]


def estimate_snr_db(audio: np.ndarray, sample_rate: int, frame_seconds: float = 0.025) -> float:
    """Blind SNR estimate: loud-frame (95th percentile) over quiet-frame (10th) energy, in dB."""
    n = max(1, int(frame_seconds * sample_rate))
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    if frames.shape[0] < 2:
        return 0.0
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return float(np.percentile(energy, 95) - np.percentile(energy, 10))


def collect_audio(paths: Sequence[Path]) -> list[Path]:
    """Files as given, plus every audio file inside given directories (sorted)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in CORPUS_AUDIO_EXTENSIONS and f.is_file())
        else:
            found.append(p)
    if not found:
        raise ConfigError("no audio files to analyse")
    return found


@dataclass(frozen=True)
class UtteranceGates:
    audio: str
    duration: float  # seconds
    snr_db: float  # blind estimate, see estimate_snr_db
    modules_executed: int
    gate_probs: list[float]  # module order
    executed: list[bool]  # module order


def analyze(runtime: Runtime, paths: Sequence[Path], out_dir: Path, *, plots: bool = True) -> dict[str, Any]:
    """Transcribe ``paths``, write the plots and ``summary.json`` to ``out_dir``; return the summary."""
    names = list(runtime.module_names)
    rows: list[UtteranceGates] = []
    errors: list[str] = []
    rate = runtime.feature_config.sample_rate
    for path in collect_audio(paths):
        try:
            audio = load_audio(path, target_rate=rate)
            result = runtime.transcribe(audio, sample_rate=rate)
        except I3dEdgeError as exc:
            errors.append(str(exc))
            continue
        executed = set(result.executed_modules)
        rows.append(UtteranceGates(os.fspath(path), result.duration, estimate_snr_db(audio, rate),
                                   result.modules_executed, [float(result.gate_probs[m]) for m in names],
                                   [m in executed for m in names]))
    if not rows:
        raise ConfigError("no audio could be analysed: " + "; ".join(errors[:3]))
    probs = np.array([r.gate_probs for r in rows])  # (U, 2N)
    on = np.array([r.executed for r in rows])  # (U, 2N)
    counts = np.array([r.modules_executed for r in rows], dtype=float)
    durations = np.array([r.duration for r in rows])
    snrs = np.array([r.snr_db for r in rows])

    def corr(a: np.ndarray, b: np.ndarray) -> float | None:
        return float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else None

    summary = {
        "bundle": str(runtime.manifest.root),
        "threshold": runtime.threshold,
        "modules": names,
        "utterances": len(rows),
        "mean_modules_executed": float(counts.mean()),
        "modules_total": len(names),
        "execution_rate": dict(zip(names, on.mean(0).round(4).tolist(), strict=True)),
        "mean_gate_prob": dict(zip(names, probs.mean(0).round(4).tolist(), strict=True)),
        "corr_modules_duration": corr(counts, durations),
        "corr_modules_snr": corr(counts, snrs),
        "errors": errors,
        "per_utterance": [asdict(r) for r in rows],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    if plots:
        summary["plots"] = _plot(out_dir, names, probs, on, counts, durations, snrs)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _plot(out_dir: Path, names: list[str], probs: np.ndarray, on: np.ndarray, counts: np.ndarray,
          durations: np.ndarray, snrs: np.ndarray) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(f"plots need matplotlib: {install_hint('plot')}, or use --no-plots") from None
    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), max(3, min(12, 0.25 * len(probs)) + 1.5)))
    im = ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ys, xs = np.nonzero(~on)
    ax.scatter(xs, ys, marker="x", color="white", s=12, linewidths=0.8, label="skipped")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_xlabel("module")
    ax.set_ylabel("utterance")
    ax.set_title("Gate probabilities (x = skipped)")
    fig.colorbar(im, ax=ax, label="p(run)")
    save(fig, "gates_heatmap.png")

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), 3.5))
    colors = ["tab:blue" if n.endswith("mha") else "tab:orange" for n in names]
    ax.bar(range(len(names)), on.mean(0), color=colors)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("execution rate")
    ax.set_title("Per-module execution rate (blue: MHA, orange: FFN)")
    save(fig, "execution_rate.png")

    for values, label, name in ((durations, "duration (s)", "modules_vs_duration.png"),
                                (snrs, "estimated SNR (dB)", "modules_vs_snr.png")):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.scatter(values, counts, s=14, alpha=0.7)
        ax.set_xlabel(label)
        ax.set_ylabel("executed modules")
        ax.set_ylim(0, len(names) + 0.5)
        ax.set_title(f"Executed modules vs {label.split(' (')[0]}")
        save(fig, name)
    return written
