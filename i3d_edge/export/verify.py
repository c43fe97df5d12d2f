"""Parity of an exported bundle with the torch model it came from.

Two checks per graph variant, on a fixed set of inputs (:func:`verification_cases`):

* **per graph**: every graph against its torch wrapper on the same inputs (the inputs of
  each graph are the torch activations of a full-depth pass); the monolithic graph against
  ``I3DModel.forward(full_depth=True)``;
* **end to end**: :meth:`i3d_edge.runtime.Runtime.forward` (the real runtime, running only the
  modules its gates select) against ``I3DModel.forward`` at several thresholds and at full
  depth: CTC log-probs over valid frames, lengths, and every gate decision;
* **padding invariance**: each row of the padded batch, run alone by the runtime, gives what it
  gives in the batch (gate probabilities, and CTC log-probs at full depth): padding never leaks
  into valid frames, whatever the module kinds.

fp32 must match within :data:`TOLERANCE`; a gate whose probability lies within
:data:`TIE_MARGIN` of the threshold may decide either way (a *tie*: that row is left out of the
log-prob comparison). int8 differences are reported, and only non-finite outputs fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from ..config import FeatureConfig
from ..errors import ExportError
from ..features import extract_features
from ..manifest import GRAPH_IO, Variant, role_of
from ..models.i3d import I3DModel
from ..module_kinds import MODULE_KINDS
from ..runtime import Runtime
from ..runtime.sessions import session_options
from .graphs import ENCODER_TIME_TENSORS, GraphSpec

__all__ = ["TIE_MARGIN", "TOLERANCE", "Case", "diverged_rows", "verification_cases", "verify_bundle"]

TOLERANCE = 1e-4  # fp32: max abs diff, times the reference's largest magnitude when that is above 1
TIE_MARGIN = 1e-5  # a gate probability this close to the threshold may decide either way
_ALIASES = {"encoder_out": "x", "y": "x"}  # graph tensor name -> activation it carries


@dataclass(frozen=True)
class Case:
    """One verification input: a padded batch of normalised features."""

    name: str
    features: np.ndarray  # (B, T, F) float32
    lens: np.ndarray  # (B,) int64

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "batch": int(self.lens.shape[0]), "frames": self.lens.tolist()}


def verification_cases(fc: FeatureConfig, seed: int = 0) -> list[Case]:
    """The shortest valid input (7 frames), ~3 s, ~30 s, a padded batch of mixed lengths (fixed
    RNG features) and ~2 s of a synthetic harmonic signal through ``extract_features``.

    Waveform features (samples) get the same durations: the receptive field, 3 s, 10 s (30 s of
    samples through a base-sized torch model is slow and adds nothing) and a padded batch."""
    rng = np.random.default_rng(seed)
    wave = fc.kind == "waveform"
    shortest = fc.min_samples if wave else 7

    def scaled(frames: int) -> int:  # log-mel frames (10 ms) -> input frames of this config
        return round(frames * fc.sample_rate / 100) if wave else frames

    def noise(*lens: int) -> tuple[np.ndarray, np.ndarray]:
        lens_arr = np.array(lens, dtype=np.int64)  # (B,)
        feats = rng.standard_normal((len(lens), max(lens), fc.n_mels)).astype(np.float32)  # (B, T, F)
        feats[np.arange(max(lens))[None, :] >= lens_arr[:, None]] = 0.0  # zero padding, as batch_features
        return feats, lens_arr

    t = np.arange(2 * fc.sample_rate) / fc.sample_rate  # 2 s
    audio = sum(np.sin(2 * np.pi * 140.0 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    audio = (0.1 * audio + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    speech = extract_features(audio, fc)[None]  # (1, T, F)
    return [
        Case(f"shortest ({shortest} frames)", *noise(shortest)),
        Case("3 s", *noise(scaled(300))),
        Case("10 s" if wave else "30 s", *noise(scaled(1000 if wave else 3000))),
        Case("padded batch", *noise(scaled(523), shortest, scaled(1210) - 17, scaled(64) + 5)),
        Case("synthetic speech 2 s", speech, np.array([speech.shape[1]], dtype=np.int64)),
    ]


@dataclass(frozen=True)
class _TorchRun:
    """``I3DModel.forward`` on one case with one setting, as numpy."""

    log_probs: np.ndarray  # (B, T', V)
    lens: np.ndarray  # (B,)
    gate_probs: np.ndarray  # (B, 2N)
    gates: np.ndarray  # (B, 2N) bool

    @property
    def valid(self) -> np.ndarray:
        """(B, T') bool: valid encoder frames."""
        return np.arange(self.log_probs.shape[1])[None, :] < self.lens[:, None]


def _torch_run(model: I3DModel, case: Case, knobs: dict[str, Any]) -> _TorchRun:
    with torch.no_grad():
        out = model(torch.from_numpy(case.features), torch.from_numpy(case.lens), **knobs)
    return _TorchRun(out.log_probs.numpy(), out.lens.numpy(), out.gate_probs.numpy(), out.gates.numpy() > 0.5)


@dataclass(frozen=True)
class _GraphCheck:
    """One graph on one case: its feeds and the torch outputs it must reproduce."""

    feeds: dict[str, np.ndarray]
    expected: tuple[np.ndarray, ...]  # in GRAPH_IO output order
    valid: np.ndarray  # (B, T') bool: valid encoder frames


def _torch_references(specs: list[GraphSpec], case: Case, full: _TorchRun) -> dict[str, _GraphCheck]:
    """Feed every graph the torch activations of a full-depth pass, in execution order; the
    monolithic graph must reproduce ``full``, the model's own full-depth forward."""
    state: dict[str, torch.Tensor] = {"features": torch.from_numpy(case.features),
                                      "features_lens": torch.from_numpy(case.lens)}
    checks: dict[str, _GraphCheck] = {}
    with torch.no_grad():
        for spec in specs:
            inputs = [state[_ALIASES.get(name, name)] for name in spec.inputs]
            if spec.role == "monolithic":
                expected: tuple[np.ndarray, ...] = (full.log_probs, full.lens)
            else:
                result = spec.module(*inputs)
                outputs = result if isinstance(result, tuple) else (result,)
                expected = tuple(o.numpy() for o in outputs)
                if spec.role == "frontend" or spec.role in MODULE_KINDS:  # the activations the next graphs read
                    state.update({_ALIASES.get(n, n): o for n, o in zip(spec.outputs, outputs, strict=True)})
            checks[spec.key] = _GraphCheck({n: t.numpy() for n, t in zip(spec.inputs, inputs, strict=True)},
                                           expected, full.valid)
    return checks


def _max_diff(got: np.ndarray, want: np.ndarray, name: str, valid: np.ndarray) -> tuple[float, float]:
    """(max abs diff, max abs reference) over valid frames; inf when shapes differ or got is not finite."""
    if got.shape != want.shape:
        return float("inf"), 0.0
    if name in ENCODER_TIME_TENSORS:
        got, want = got[valid], want[valid]  # (n_valid, ...)
    if got.size == 0:
        return 0.0, 0.0
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max()
    return (float(diff) if np.isfinite(got).all() else float("inf")), float(np.abs(want).max())


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(None), providers=["CPUExecutionProvider"])


def _check_graphs(root: Path, graphs: dict[str, str], refs: list[dict[str, _GraphCheck]], strict: bool,
                  failures: list[str], variant: str) -> dict[str, float]:
    """Max abs diff per graph over all cases; records the graphs outside tolerance."""
    report: dict[str, float] = {}
    for key, rel in graphs.items():
        session = _session(root / rel)
        outputs = list(GRAPH_IO[role_of(key)][1])  # the order of _GraphCheck.expected
        worst, allowed = 0.0, TOLERANCE
        for case_refs in refs:
            check = case_refs[key]
            got = session.run(outputs, check.feeds)
            for name, g, want in zip(outputs, got, check.expected, strict=True):
                diff, scale = _max_diff(g, want, name, check.valid)
                worst = max(worst, diff)
                allowed = max(allowed, TOLERANCE * scale)  # activations grow: tolerance scales
        report[key] = worst
        if not np.isfinite(worst) or (strict and worst > allowed):
            failures.append(f"{variant} graph {key} differs from torch by {worst:.3g} (allowed {allowed:.3g})")
    return report


def _e2e_settings(model: I3DModel) -> dict[str, dict[str, Any]]:
    """Runtime knobs checked end to end: the default threshold, 0.0 and 0.9, and full depth."""
    if model.cfg.gates == "none":
        return {"default": {}, "full_depth": {"full_depth": True}}
    return {"default": {}, "threshold=0.0": {"threshold": 0.0}, "threshold=0.9": {"threshold": 0.9},
            "full_depth": {"full_depth": True}}


def diverged_rows(want: np.ndarray, got: np.ndarray, probs: np.ndarray, threshold: float,
                   local: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows whose gate decisions differ: (tied rows, failed rows) as (B,) bool, and the number
    of differing decisions. A row is a tie when its first differing gate is within TIE_MARGIN
    of the threshold (and, for a global predictor, all of them are: a local predictor's later
    probabilities legitimately change once an earlier decision differs)."""
    differ = want != got  # (B, 2N)
    near = np.abs(probs - threshold) <= TIE_MARGIN  # (B, 2N)
    first = differ.argmax(axis=1)  # (B,)
    rows = np.arange(differ.shape[0])
    tied = differ.any(axis=1) & near[rows, first]
    if not local:
        tied &= ~(differ & ~near).any(axis=1)
    return tied, differ.any(axis=1) & ~tied, int(differ.sum())


def _check_end_to_end(root: Path, variant: str, model: I3DModel, cases: list[Case],
                      torch_runs: dict[str, list[_TorchRun]], strict: bool, failures: list[str]
                      ) -> dict[str, dict[str, Any]]:
    """Runtime.forward vs I3DModel.forward per setting: log-probs, lengths, gate decisions."""
    base = Runtime(root, precision=variant)
    local = model.cfg.gates == "local"
    report: dict[str, dict[str, Any]] = {}
    for setting, knobs in _e2e_settings(model).items():
        runtime = base.with_options(**knobs)
        threshold = runtime.threshold
        worst, worst_probs, decisions, mismatches, ties, rows_compared = 0.0, 0.0, 0, 0, 0, 0
        allowed = TOLERANCE
        for case, want in zip(cases, torch_runs[setting], strict=True):
            got = runtime.forward(case.features, case.lens)
            if not np.array_equal(got.lens, want.lens):
                failures.append(f"{variant} end-to-end ({setting}, {case.name}): output lengths differ")
                continue
            tied, failed, n_differ = diverged_rows(want.gates, got.gates, want.gate_probs, threshold, local)
            decisions += want.gates.size
            mismatches += n_differ
            ties += int(tied.sum())
            if strict and failed.any():
                failures.append(f"{variant} end-to-end ({setting}, {case.name}): gate decisions differ "
                                f"from torch in {int(failed.sum())} row(s)")
            same = ~(tied | failed)  # (B,) rows that ran the same modules
            diff, scale = _max_diff(got.log_probs, want.log_probs, "log_probs", want.valid & same[:, None])
            prob_diff, _ = _max_diff(got.gate_probs[same], want.gate_probs[same], "gate_probs", want.valid)
            worst, worst_probs = max(worst, diff), max(worst_probs, prob_diff)
            allowed = max(allowed, TOLERANCE * scale)  # the per-graph rule: log-probs of -40 carry fp32 noise
            rows_compared += int(same.sum())
        report[setting] = {
            "threshold": None if knobs.get("full_depth") else threshold,
            "log_probs_max_abs_diff": worst,
            "log_probs_allowed": allowed,
            "gate_probs_max_abs_diff": worst_probs,
            "gate_decisions": decisions,
            "gate_mismatches": mismatches,
            "gate_ties": ties,
            "rows_compared": rows_compared,
        }
        if not np.isfinite(worst) or (strict and worst > allowed):
            failures.append(f"{variant} end-to-end ({setting}) CTC log-probs differ from torch by {worst:.3g} "
                            f"(allowed {allowed:.3g})")
    return report


def _check_padding(root: Path, variant: str, cases: list[Case], strict: bool, failures: list[str]
                   ) -> dict[str, float]:
    """Max abs diff between each row of every padded batch run in the batch and run alone: gate
    probabilities (default knobs) and CTC log-probs at full depth, over the row's valid frames."""
    gated = Runtime(root, precision=variant)
    full = gated.with_options(full_depth=True)
    probs_diff = log_probs_diff = 0.0
    for case in (c for c in cases if c.lens.shape[0] > 1):
        batch_probs = gated.forward(case.features, case.lens).gate_probs  # (B, G)
        batch_log_probs = full.forward(case.features, case.lens).log_probs  # (B, T', V)
        for r, n in enumerate(case.lens.tolist()):
            row, row_lens = case.features[r:r + 1, :n], case.lens[r:r + 1]  # (1, n, F), (1,)
            alone = full.forward(row, row_lens)
            frames = int(alone.lens[0])
            probs_diff = max(probs_diff, _abs_diff(gated.forward(row, row_lens).gate_probs[0], batch_probs[r]))
            log_probs_diff = max(log_probs_diff, _abs_diff(alone.log_probs[0, :frames], batch_log_probs[r, :frames]))
    report = {"gate_probs_max_abs_diff": probs_diff, "log_probs_max_abs_diff": log_probs_diff}
    for name, diff in (("gate probabilities", probs_diff), ("CTC log-probs", log_probs_diff)):
        if not np.isfinite(diff) or (strict and diff > TOLERANCE):
            failures.append(f"{variant} padding invariance: {name} of a row alone and in its padded batch differ "
                            f"by {diff:.3g} (allowed {TOLERANCE:g})")
    return report


def _abs_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs difference of two arrays of one shape; inf when ``got`` is not finite."""
    return float(np.abs(got.astype(np.float64) - want).max()) if np.isfinite(got).all() else float("inf")


def verify_bundle(root: Path, model: I3DModel, specs: list[GraphSpec], variants: dict[str, Variant],
                  feature_config: FeatureConfig) -> dict[str, Any]:
    """Check every variant of the bundle at ``root``; the report for ``manifest["verification"]``.

    Raises ExportError naming the first failure (fp32 outside tolerance, a gate decision that
    differs and is no tie, or any non-finite output)."""
    cases = verification_cases(feature_config)
    settings = _e2e_settings(model)
    torch_runs = {setting: [_torch_run(model, case, knobs) for case in cases] for setting, knobs in settings.items()}
    refs = [_torch_references(specs, case, full) for case, full in zip(cases, torch_runs["full_depth"], strict=True)]
    failures: list[str] = []
    report: dict[str, Any] = {
        "status": "passed",
        "tolerance": TOLERANCE,
        "tie_margin": TIE_MARGIN,
        "inputs": [case.describe() for case in cases],
        "variants": {},
    }
    for name, variant in variants.items():
        strict = variant.quantization is None  # fp32: parity; int8: report only
        graphs = _check_graphs(root, variant.graphs, refs, strict, failures, name)
        e2e = _check_end_to_end(root, name, model, cases, torch_runs, strict, failures)
        report["variants"][name] = {
            "graphs_max_abs_diff": max(graphs.values()),
            "end_to_end_max_abs_diff": max(r["log_probs_max_abs_diff"] for r in e2e.values()),
            "gate_agreement": _agreement(e2e),
            "graphs": graphs,
            "end_to_end": e2e,
            "padding_invariance": _check_padding(root, name, cases, strict, failures),
        }
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise ExportError(f"verification failed: {failures[0]}{more}")
    return report


def _agreement(e2e: dict[str, dict[str, Any]]) -> float:
    """Fraction of gate decisions identical to torch, over every setting and case."""
    total = sum(r["gate_decisions"] for r in e2e.values())
    return 1.0 - sum(r["gate_mismatches"] for r in e2e.values()) / total if total else 1.0
