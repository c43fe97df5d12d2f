"""Frozen configuration dataclasses shared by training, export and runtime (no torch here).

One dataclass per concern, validated in one place (``__post_init__``). Checkpoints and bundle
manifests store them as plain dicts via :meth:`to_dict` / :meth:`from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError

__all__ = ["CONFIG_VERSION", "SUBSAMPLING", "FeatureConfig", "GatePredictor", "ModelConfig", "encoder_lengths"]

CONFIG_VERSION = 1  # bump when a field changes meaning; readers refuse unknown versions
SUBSAMPLING = 4  # conv frontend reduces time by 4: one encoder frame per 4 feature frames

GatePredictor = Literal["global", "local", "none"]


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown field(s) {', '.join(repr(k)[:40] for k in unknown[:5])}")
    try:
        return cls(**data)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of an I3D CTC encoder; the checkpoint carries its own copy."""

    n_mels: int = 80  # input feature dimension
    d_model: int = 192  # encoder width D
    n_heads: int = 4  # attention heads; must divide d_model
    d_ff: int = 768  # hidden size of each feed-forward module
    n_layers: int = 12  # N encoder layers, each with a gated MHA and a gated FFN (2N gates)
    conv_channels: int = 64  # channels of the two stride-2 conv subsampling layers
    vocab_size: int = 29  # CTC output size, blank included (index 0)
    dropout: float = 0.1  # dropout in attention weights and module outputs (training only)
    gates: GatePredictor = "global"  # global: all 2N gates up front; local: per layer; none
    gate_hidden: int = 64  # hidden width of the gate predictor MLP
    gate_threshold: float = 0.5  # default inference threshold: run a module when p > this

    def __post_init__(self) -> None:
        for name in ("n_mels", "d_model", "n_heads", "d_ff", "n_layers", "conv_channels",
                     "vocab_size", "gate_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(
                f"model config: d_model {self.d_model} must split into {self.n_heads} heads "
                "of even size")
        if self.d_model % 2:
            raise ConfigError("model config: d_model must be even (sinusoidal positions)")
        if self.vocab_size < 2:
            raise ConfigError("model config: vocab_size must be >= 2 (blank + one token)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model config: dropout must be in [0, 1), got {self.dropout}")
        if self.gates not in ("global", "local", "none"):
            raise ConfigError(
                f"model config: gates must be global, local or none, got {self.gates!r}")
        if not 0.0 <= self.gate_threshold < 1.0:
            raise ConfigError("model config: gate_threshold must be in [0, 1)")

    @property
    def n_gates(self) -> int:
        """Number of gated modules (2 per layer), also for vanilla models."""
        return 2 * self.n_layers

    @property
    def module_names(self) -> tuple[str, ...]:
        """Execution order of the gated modules: layer00.mha, layer00.ffn, layer01.mha, ..."""
        return tuple(f"layer{i:02d}.{kind}" for i in range(self.n_layers) for kind in ("mha", "ffn"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end settings and the global normalisation statistics."""

    sample_rate: int = 16000  # Hz; audio is resampled to this
    n_mels: int = 80  # mel bands
    n_fft: int = 512  # FFT size (>= win_length)
    win_length: int = 400  # 25 ms analysis window (samples)
    hop_length: int = 160  # 10 ms hop (samples)
    f_min: float = 20.0  # lowest mel filter edge (Hz)
    f_max: float = 7600.0  # highest mel filter edge (Hz), <= sample_rate / 2
    mean: tuple[float, ...] = field(default_factory=tuple)  # per-band mean, () = no shift
    std: tuple[float, ...] = field(default_factory=tuple)  # per-band std, () = no scaling

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("sample_rate", "n_mels", "n_fft", "win_length", "hop_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"feature config: {name} must be a positive integer, got {value!r}")
        if self.win_length > self.n_fft:
            raise ConfigError("feature config: win_length must be <= n_fft")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ConfigError("feature config: need 0 <= f_min < f_max <= sample_rate / 2")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values and len(values) != self.n_mels:
                raise ConfigError(f"feature config: {name} has {len(values)} values, expected {self.n_mels}")
        if any(not math.isfinite(v) for v in self.mean + self.std):
            raise ConfigError("feature config: mean and std values must be finite numbers")
        if any(not (v > 0.0) for v in self.std):
            raise ConfigError("feature config: std values must be > 0")

    @property
    def frame_shift(self) -> float:
        """Seconds between feature frames."""
        return self.hop_length / self.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest input (samples) giving one encoder frame: 7 feature frames."""
        return self.win_length + 6 * self.hop_length

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> FeatureConfig:
        return _from_dict(cls, data, "feature config")


def encoder_lengths(feature_lengths: Any) -> Any:
    """Encoder frames after the x4 conv subsampling (two kernel-3 stride-2 convs).

    Works on ints and on integer numpy arrays; torch and ONNX graphs use the same formula.
    """
    return ((feature_lengths - 1) // 2 - 1) // 2
