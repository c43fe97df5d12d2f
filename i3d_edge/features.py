"""Log-mel features in numpy: the single implementation used by training and runtime alike.

``sliding_window_view`` frames the signal (no copy), ``rfft`` gives the power spectrum and a
precomputed HTK mel filterbank projects it. No centre padding: ``T = 1 + (N - win) // hop``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .config import FeatureConfig

__all__ = ["LOG_FLOOR", "WAVE_NORM_EPS", "batch_features", "extract_features", "log_mel", "mel_filterbank",
           "normalize", "normalize_waveform", "num_frames"]

LOG_FLOOR = 1e-10  # power floor before the log
WAVE_NORM_EPS = 1e-7  # variance floor of the per-utterance waveform normalisation (as Hugging Face's)


def num_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of feature frames for ``n_samples`` samples (0 when shorter than one window);
    waveform features have one frame per sample."""
    if cfg.kind == "waveform":
        return n_samples
    if n_samples < cfg.win_length:
        return 0
    return 1 + (n_samples - cfg.win_length) // cfg.hop_length


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def _filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.float64(f_min)), _hz_to_mel(np.float64(f_max)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)  # (n_mels, n_fft//2+1)
    fb.setflags(write=False)
    return fb


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular HTK-mel filterbank, shape (n_mels, n_fft // 2 + 1), read-only and cached."""
    return _filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)


@lru_cache(maxsize=8)
def _window(win_length: int) -> np.ndarray:
    win = np.hanning(win_length + 1)[:-1].astype(np.float32)  # periodic Hann
    win.setflags(write=False)
    return win


def log_mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Un-normalised log-mel features of a mono float waveform at ``cfg.sample_rate``.

    audio: (N,) float -> (T, n_mels) float32, T = num_frames(N).
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = num_frames(audio.shape[0], cfg)
    if n == 0:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    frames = sliding_window_view(audio, cfg.win_length)[:: cfg.hop_length]  # (T, win)
    frames = frames - frames.mean(axis=1, keepdims=True)  # remove DC per frame
    spec = np.fft.rfft(frames * _window(cfg.win_length), n=cfg.n_fft, axis=1)  # (T, F)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ mel_filterbank(cfg).T  # (T, n_mels)
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def normalize(feats: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Apply the global per-band normalisation stored with the model: (T, F) -> (T, F) float32."""
    out: np.ndarray = np.asarray(feats, dtype=np.float32)
    if cfg.mean:
        out = out - np.asarray(cfg.mean, dtype=np.float32)
    if cfg.std:
        out = out / np.asarray(cfg.std, dtype=np.float32)
    return out


def normalize_waveform(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the utterance, as Hugging Face's Wav2Vec2FeatureExtractor:
    (N,) -> (N,) float32, ``(x - mean) / sqrt(var + 1e-7)``."""
    x = np.asarray(audio, dtype=np.float32)
    if x.size == 0:
        return x
    x64 = x.astype(np.float64)
    mean = x64.mean()
    return ((x64 - mean) / np.sqrt(x64.var() + WAVE_NORM_EPS)).astype(np.float32)


def extract_features(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The model input of a mono waveform at ``cfg.sample_rate``: (N,) -> (T, F) float32.

    log_mel: normalised log-mel frames (T, n_mels); waveform: the (optionally normalised)
    samples themselves, (N, 1)."""
    if cfg.kind == "waveform":
        samples = normalize_waveform(audio) if cfg.do_normalize else np.asarray(audio, dtype=np.float32)
        return np.ascontiguousarray(samples[:, None])
    return normalize(log_mel(audio, cfg), cfg)


def batch_features(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad a list of (T_i, F) arrays into ``(features, features_lens)``.

    Returns features (B, T_max, F) float32 and features_lens (B,) int64.
    """
    lens = np.array([f.shape[0] for f in feats], dtype=np.int64)
    dim = feats[0].shape[1]
    out = np.zeros((len(feats), int(lens.max(initial=0)), dim), dtype=np.float32)
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = f
    return out, lens
