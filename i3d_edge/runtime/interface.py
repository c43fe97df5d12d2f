"""The full interface check of a graph session: dtype, rank and every dimension, then one probe run.

``SessionPool`` checks input/output names and static widths; a graph can still declare a fixed
time length, the wrong dtype or rank, or fail only when run (a reshape to another width, a
gather out of range). So every session, when it is created, is also compared with the contract
below and run once on a tiny batch (2 rows, 23 feature frames = 5 encoder frames, one row
shorter): the outputs must have the contract's dtype and exact shape and be finite (gate
probabilities in [0, 1]). A graph that fails is refused when the bundle is opened, with one
line naming the file, instead of raising deep inside a transcription.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from ..config import ModelConfig
from ..errors import BundleError, first_line
from ..manifest import GRAPH_IO, role_of

__all__ = ["check_interface"]

# Dimension symbols: B batch, T feature frames, E encoder frames (all dynamic); ints and the
# names of ModelConfig widths are static.
_DTYPES = {"features": "tensor(float)", "features_lens": "tensor(int64)", "x_lens": "tensor(int64)",
           "log_probs_lens": "tensor(int64)"}  # every other tensor is float32
_PROBE_FRAMES = (23, 19)  # feature frames per probe row -> 5 and 4 encoder frames


def _dims(name: str, key: str, cfg: ModelConfig) -> tuple[str | int, ...]:
    """The contract's shape of tensor ``name`` of graph ``key``."""
    width = {"features": cfg.n_mels, "x": cfg.d_model, "y": cfg.d_model, "encoder_out": cfg.d_model,
             "log_probs": cfg.vocab_size}
    if name in ("features_lens", "x_lens", "log_probs_lens"):
        return ("B",)
    if name == "gate_probs":
        return ("B", cfg.n_gates if key == "gate" else len(cfg.layer_kinds))  # global, or a layer's local gates
    return ("B", "T" if name == "features" else "E", width[name])


def _static_check(key: str, path: object, args: list[Any], cfg: ModelConfig) -> None:
    for arg in args:
        want_type = _DTYPES.get(arg.name, "tensor(float)")
        if arg.type != want_type:
            raise BundleError(f"{path}: {arg.name} is {arg.type}, the contract needs {want_type}")
        want = _dims(arg.name, key, cfg)
        shape = arg.shape or []
        if len(shape) != len(want):
            raise BundleError(f"{path}: {arg.name} has rank {len(shape)}, the contract needs {len(want)} "
                              f"({', '.join(map(str, want))})")
        for axis, (got, need) in enumerate(zip(shape, want, strict=True)):
            if isinstance(need, str) and isinstance(got, int):
                raise BundleError(f"{path}: dimension {axis} of {arg.name} is fixed at {got}, the contract needs "
                                  f"it dynamic ({'batch' if need == 'B' else 'frames'})")
            if isinstance(need, int) and isinstance(got, int) and got != need:
                raise BundleError(f"{path}: dimension {axis} of {arg.name} is {got}, the manifest's model needs {need}")


def _probe_frames(cfg: ModelConfig) -> tuple[int, int]:
    """Input lengths (feature frames, or samples for a waveform frontend) giving 5 and 4 encoder frames."""
    if cfg.frontend == "logmel":
        return _PROBE_FRAMES

    def shortest(frames: int) -> int:  # smallest input length with at least ``frames`` encoder frames
        lo, hi = 1, 1
        while int(cfg.encoder_lengths(hi)) < frames:
            lo, hi = hi, hi * 2
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if int(cfg.encoder_lengths(mid)) < frames else (lo, mid)
        return lo

    return shortest(5), shortest(4)


def _feeds(role: str, cfg: ModelConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = np.array(_probe_frames(cfg), dtype=np.int64)  # (2,)
    enc = np.asarray(cfg.encoder_lengths(frames), dtype=np.int64)  # (2,)
    if role in ("frontend", "monolithic"):
        feats = rng.standard_normal((2, int(frames.max()), cfg.n_mels)).astype(np.float32)  # (B, T, F)
        return {"features": feats, "features_lens": frames}
    x = rng.standard_normal((2, int(enc.max()), cfg.d_model)).astype(np.float32)  # (B, T', D)
    given: dict[str, np.ndarray] = {"encoder_out": x, "x": x, "x_lens": enc}
    return {name: given[name] for name in GRAPH_IO[role][0]}  # gate, head, or a module kind's inputs


def _expected(name: str, key: str, cfg: ModelConfig) -> tuple[int, ...]:
    longest = max(_probe_frames(cfg))
    sizes = {"B": 2, "T": longest, "E": int(cfg.encoder_lengths(longest))}
    return tuple(sizes[d] if isinstance(d, str) else d for d in _dims(name, key, cfg))


def check_interface(key: str, path: object, session: ort.InferenceSession, cfg: ModelConfig) -> None:
    """Raise a one-line BundleError when graph ``key``'s session does not fit the contract exactly."""
    role = role_of(key)
    _static_check(key, path, [*session.get_inputs(), *session.get_outputs()], cfg)
    names = list(GRAPH_IO[role][1])
    try:
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # the failure is reported below, in one line; onnxruntime stays silent
        outputs = session.run(names, _feeds(role, cfg), quiet)
    except Exception as exc:  # onnxruntime raises its own exception types
        reason = first_line(exc)
        raise BundleError(f"{path}: fails a probe run on inputs of the contract's shapes ({reason})") from None
    for name, value in zip(names, outputs, strict=True):
        want = _expected(name, key, cfg)
        want_dtype = np.int64 if _DTYPES.get(name) == "tensor(int64)" else np.float32
        if not isinstance(value, np.ndarray) or value.dtype != want_dtype or value.shape != want:
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
            raise BundleError(f"{path}: a probe run gives {name} as {got}, the contract needs "
                              f"{np.dtype(want_dtype)} {want}")
        if name in ("x_lens", "log_probs_lens"):
            lens = np.asarray(cfg.encoder_lengths(np.array(_probe_frames(cfg), dtype=np.int64)))
            if value.tolist() != lens.tolist():
                raise BundleError(f"{path}: a probe run gives {name} {value.tolist()}, the contract needs "
                                  f"{lens.tolist()} (the frontend's subsampling)")
        elif not np.isfinite(value).all():
            raise BundleError(f"{path}: a probe run gives non-finite {name} (NaN or infinite weights?)")
        elif name == "gate_probs" and not ((value >= 0) & (value <= 1)).all():
            raise BundleError(f"{path}: a probe run gives gate probabilities outside [0, 1]")
