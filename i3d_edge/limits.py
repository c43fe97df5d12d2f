"""Ceilings on what an untrusted bundle or checkpoint may declare, checked before anything is allocated.

A manifest or checkpoint is a few kB of text that names sizes: layers, widths, frame rates, file
counts. Each is checked here against a fixed ceiling, and the model's size against the bytes of
weights actually present (a model cannot have more parameters than its graphs or its state dict
hold), so that a small hostile file cannot make the reader allocate gigabytes or loop for minutes.
The ceilings are far above any model this project trains (the default model: 12 layers, d_model
192, d_ff 768, 29 tokens, 100 feature frames per second).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .config import FeatureConfig, ModelConfig
from .errors import ConfigError
from .module_kinds import MODULE_KINDS

__all__ = ["LIMITS", "Limits", "min_weights", "thread_limit"]


@dataclass(frozen=True)
class Limits:
    """The ceilings (inclusive) every reader of bundles and checkpoints enforces."""

    # model config
    n_layers: int = 256
    d_model: int = 8192
    n_heads: int = 256
    d_ff: int = 65536
    conv_channels: int = 4096
    vocab_size: int = 65536
    gate_hidden: int = 8192
    depthwise_kernel: int = 1023  # conformer convolution
    n_mels: int = 512
    # feature config
    min_sample_rate: int = 1000  # Hz
    max_sample_rate: int = 384000  # Hz
    max_frame_rate: int = 400  # feature frames per second (hop >= 2.5 ms; the default is 100)
    max_n_fft: int = 16384  # samples, and at most one second of audio
    # manifest
    manifest_bytes: int = 16 << 20  # a 12-layer manifest is ~20 kB
    files: int = 8192  # entries of "files"
    variants: int = 8
    path_chars: int = 512  # characters of one bundle path
    path_parts: int = 8  # components of one bundle path (fp32/layer00.mha.onnx has 2)
    # resources
    threads_per_core: int = 4  # --threads may be at most cores x this

    def check_model(self, cfg: ModelConfig) -> None:
        """Raise ConfigError when a model dimension is beyond its ceiling."""
        for name in ("n_layers", "d_model", "n_heads", "d_ff", "conv_channels", "vocab_size", "gate_hidden",
                     "n_mels", "depthwise_kernel"):
            value, ceiling = getattr(cfg, name), getattr(self, name)
            if value > ceiling:
                raise ConfigError(f"model config: {name} {value} is beyond the ceiling of {ceiling}")

    def check_features(self, fc: FeatureConfig) -> None:
        """Raise ConfigError when a feature setting is outside its sane range."""
        if not self.min_sample_rate <= fc.sample_rate <= self.max_sample_rate:
            raise ConfigError(f"feature config: sample_rate {fc.sample_rate} Hz is outside "
                              f"[{self.min_sample_rate}, {self.max_sample_rate}]")
        if fc.n_mels > self.n_mels:
            raise ConfigError(f"feature config: n_mels {fc.n_mels} is beyond the ceiling of {self.n_mels}")
        if fc.n_fft > min(self.max_n_fft, fc.sample_rate):
            raise ConfigError(f"feature config: n_fft {fc.n_fft} is beyond the ceiling of "
                              f"{min(self.max_n_fft, fc.sample_rate)} (at most {self.max_n_fft} and one second)")
        if fc.hop_length * self.max_frame_rate < fc.sample_rate or fc.hop_length > fc.sample_rate:
            raise ConfigError(f"feature config: hop_length {fc.hop_length} gives "
                              f"{fc.sample_rate / fc.hop_length:.6g} frames per second (allowed: 1 to "
                              f"{self.max_frame_rate})")


LIMITS = Limits()


def min_weights(cfg: ModelConfig) -> int:
    """A lower bound on the number of weights of a model with this config.

    Per layer each module's matrices (``module_kinds``: attention 4 D^2, feed-forward 2 D d_ff,
    convolution 3 D^2), plus the output layer (D V): biases, norms, the depthwise and frontend
    convolutions and the gates only add to the true count.
    """
    d = cfg.d_model
    layer = sum(MODULE_KINDS[kind].square_weights * d * d + MODULE_KINDS[kind].ff_weights * d * cfg.d_ff
                for kind in cfg.layer_kinds)
    return cfg.n_layers * layer + d * cfg.vocab_size


def thread_limit() -> int:
    """The most intra-op threads a session may ask for: the machine's cores x a small factor."""
    return max(1, os.cpu_count() or 1) * LIMITS.threads_per_core
