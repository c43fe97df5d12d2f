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
    min_sample_rate: int = 4000  # Hz: the lowest rate audio is read or resampled at (audio.MIN_SAMPLE_RATE)
    max_sample_rate: int = 384000  # Hz
    max_frame_rate: int = 400  # feature frames per second (hop >= 2.5 ms; the default is 100)
    max_n_fft: int = 16384  # samples, and at most one second of audio
    # waveform (wav2vec2-style) frontend: conv feature encoder and positional convolution
    conv_layers: int = 16  # wav2vec2 has 7
    max_receptive_field: int = 16384  # samples of one encoder frame's input (wav2vec2: 400), at most one second
    pos_conv_kernel: int = 1024  # wav2vec2: 128, data2vec: 19
    pos_conv_layers: int = 16  # data2vec: 5
    # manifest
    manifest_bytes: int = 16 << 20  # a 12-layer manifest is ~20 kB
    files: int = 8192  # entries of "files"
    variants: int = 8
    path_chars: int = 512  # characters of one bundle path
    path_parts: int = 8  # components of one bundle path (fp32/layer00.mha.onnx has 2)
    # zip-format torch files (checkpoints, pytorch_model.bin)
    zip_records: int = 1 << 20  # records of one archive (torch writes one per tensor storage)
    zip_ratio: int = 16  # bytes a compressed record, and the whole archive, may unpack to per byte
    # resources
    threads_per_core: int = 4  # --threads may be at most cores x this

    def check_model(self, cfg: ModelConfig) -> None:
        """Raise ConfigError when a model dimension is beyond its ceiling."""
        for name in ("n_layers", "d_model", "n_heads", "d_ff", "conv_channels", "vocab_size", "gate_hidden",
                     "n_mels", "depthwise_kernel"):
            value, ceiling = getattr(cfg, name), getattr(self, name)
            if value > ceiling:
                raise ConfigError(f"model config: {name} {value} is beyond the ceiling of {ceiling}")
        self.check_waveform(cfg)

    def check_waveform(self, cfg: ModelConfig) -> None:
        """Raise ConfigError when the waveform frontend's convolutions are beyond their ceilings or do not
        fit the model (no-op for a log-mel model). Checked before any sample buffer is sized by them."""
        wave = cfg.waveform
        if wave is None:
            return
        if len(wave.conv_dim) > self.conv_layers:
            raise ConfigError(f"waveform config: {len(wave.conv_dim)} conv layers, more than {self.conv_layers}")
        if max(wave.conv_dim) > self.conv_channels:
            raise ConfigError(f"waveform config: conv_dim {max(wave.conv_dim)} is beyond the ceiling of "
                              f"{self.conv_channels}")
        if any(k > self.max_receptive_field or s > self.max_receptive_field
               for k, s in zip(wave.conv_kernel, wave.conv_stride, strict=True)):
            raise ConfigError(f"waveform config: a conv kernel or stride is beyond the ceiling of "
                              f"{self.max_receptive_field} samples")
        if wave.receptive_field > self.max_receptive_field:
            raise ConfigError(f"waveform config: the convolutions read {wave.receptive_field} samples per encoder "
                              f"frame, beyond the ceiling of {self.max_receptive_field}")
        if wave.stride > self.max_receptive_field:
            raise ConfigError(f"waveform config: conv strides of {wave.stride} samples per encoder frame are "
                              f"beyond the ceiling of {self.max_receptive_field}")
        if wave.pos_conv_kernel > self.pos_conv_kernel or wave.pos_conv_layers > self.pos_conv_layers:
            raise ConfigError(f"waveform config: pos_conv_kernel {wave.pos_conv_kernel} or pos_conv_layers "
                              f"{wave.pos_conv_layers} is beyond the ceiling of {self.pos_conv_kernel} / "
                              f"{self.pos_conv_layers}")
        if cfg.d_model % wave.pos_conv_groups:
            raise ConfigError(f"waveform config: pos_conv_groups {wave.pos_conv_groups} does not divide "
                              f"d_model {cfg.d_model}")

    def check_frontend(self, cfg: ModelConfig, fc: FeatureConfig) -> None:
        """Raise ConfigError unless the model and feature configs are each within their ceilings and fit
        each other: a waveform model reads waveform features whose window is its receptive field and whose
        hop is its conv stride, at a sample rate giving 1 to ``max_frame_rate`` encoder frames per second."""
        self.check_model(cfg)
        self.check_features(fc)
        if (cfg.waveform is not None) != (fc.kind == "waveform"):
            raise ConfigError(f"feature config: kind {fc.kind} does not fit a model with a {cfg.frontend} frontend")
        wave = cfg.waveform
        if wave is None:
            return
        if (fc.win_length, fc.hop_length) != (wave.receptive_field, wave.stride):
            raise ConfigError(f"feature config: win_length {fc.win_length} and hop_length {fc.hop_length} must be "
                              f"the waveform frontend's receptive field {wave.receptive_field} and stride "
                              f"{wave.stride}")
        if wave.receptive_field > fc.sample_rate:
            raise ConfigError(f"feature config: sample_rate {fc.sample_rate} Hz is less than the "
                              f"{wave.receptive_field} samples one encoder frame reads (at most one second)")

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
