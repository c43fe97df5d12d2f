"""Log-mel features in numpy: the single implementation used by training and runtime alike.

``sliding_window_view`` frames the signal (no copy), ``rfft`` gives the power spectrum and a
precomputed HTK mel filterbank projects it. No centre padding: ``T = 1 + (N - win) // hop``.

Speed: frames go through the FFT in blocks of ``_BLOCK`` rows of a reused float64
buffer (numpy's float64 FFT is about twice as fast as its float32 one, and a block stays in
cache), and the filterbank is applied as the sparse sum it is (each band covers a contiguous
run of bins: one gather and one ``add.reduceat``) instead of a dense matmul, so no BLAS call is
made: OpenBLAS' worker threads, woken by a matmul of this size, spin and starve the
onnxruntime sessions that run next on a loaded small CPU (measured up to 100x slower matmuls).
The per-frame DC comes from one running sum over the signal instead of a pass over every frame.
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


_BLOCK = 128  # frames per FFT block (1.28 s at a 10 ms hop): fastest of 64-512 measured


@lru_cache(maxsize=8)
def _window64(win_length: int) -> np.ndarray:
    win = np.hanning(win_length + 1)[:-1].astype(np.float32).astype(np.float64)  # periodic Hann (float32 values)
    win.setflags(write=False)
    return win


@lru_cache(maxsize=8)
def _sparse_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filterbank as per-band runs of bins: (cols (K,) int, weights (K,) float64, starts (n_mels,) int).

    Band b sums ``power[:, cols[starts[b]:starts[b+1]]] * weights[...]``; a band without any
    bin gets one zero-weight entry, so ``add.reduceat`` never sees an empty run."""
    fb = _filterbank(sample_rate, n_fft, n_mels, f_min, f_max)  # (n_mels, F)
    cols: list[np.ndarray] = []
    starts = np.empty(n_mels, dtype=np.intp)
    k = 0
    for b, row in enumerate(fb):
        nz = np.flatnonzero(row)
        run = np.arange(nz[0], nz[-1] + 1) if nz.size else np.zeros(1, dtype=np.intp)
        starts[b] = k
        cols.append(run)
        k += run.size
    col = np.concatenate(cols)  # (K,)
    rows = np.repeat(np.arange(n_mels), [c.size for c in cols])  # (K,) band of each entry
    weights = fb[rows, col].astype(np.float64)  # (K,), 0 for an empty band
    for arr in (col, weights, starts):
        arr.setflags(write=False)
    return col, weights, starts


def log_mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Un-normalised log-mel features of a mono float waveform at ``cfg.sample_rate``.

    audio: (N,) float -> (T, n_mels) float32, T = num_frames(N).
    """
    audio = np.asarray(audio, dtype=np.float32)
    n = num_frames(audio.shape[0], cfg)
    out = np.empty((n, cfg.n_mels), dtype=np.float32)  # (T, n_mels)
    if n == 0:
        return out
    used = audio[: (n - 1) * cfg.hop_length + cfg.win_length].astype(np.float64)  # (N',) samples in a frame
    frames = sliding_window_view(used, cfg.win_length)[:: cfg.hop_length]  # (T, win), a view
    window = _window64(cfg.win_length)  # (win,)
    mel = np.empty((min(_BLOCK, n), cfg.n_mels), dtype=np.float64)  # (block, n_mels)
    cols, weights, starts = _sparse_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
    # per-frame means (DC) from one running sum: O(N) instead of a pass over every (T, win) sample
    csum = np.concatenate(([0.0], np.cumsum(used)))  # (N' + 1,)
    first = np.arange(n) * cfg.hop_length  # (T,) first sample of each frame
    means = ((csum[first + cfg.win_length] - csum[first]) / cfg.win_length)[:, None]  # (T, 1)
    buf = np.zeros((min(_BLOCK, n), cfg.n_fft), dtype=np.float64)  # (block, n_fft), zero tail = FFT padding
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        block = buf[: e - s, : cfg.win_length]  # (b, win)
        np.subtract(frames[s:e], means[s:e], out=block)  # remove DC per frame
        block *= window
        spec = np.fft.rfft(buf[: e - s], axis=1)  # (b, F) complex128
        power = np.square(spec.real)  # (b, F) float64
        power += np.square(spec.imag)
        np.add.reduceat(power[:, cols] * weights, starts, axis=1, out=mel[: e - s])  # (b, n_mels) float64
        out[s:e] = mel[: e - s]
    np.maximum(out, LOG_FLOOR, out=out)
    return np.log(out, out=out)


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


def with_edge_silence(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``cfg.edge_silence`` seconds of zeros before and after ``audio``: (N,) -> (N + 2P,) float32."""
    x = np.asarray(audio, dtype=np.float32)
    pad = round(cfg.edge_silence * cfg.sample_rate)
    if pad == 0:
        return x
    silence = np.zeros(pad, dtype=np.float32)
    return np.concatenate([silence, x, silence])


def extract_features(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The model input of a mono waveform at ``cfg.sample_rate``: (N,) -> (T, F) float32.

    log_mel: normalised log-mel frames (T, n_mels); waveform: the (optionally normalised)
    samples themselves, (N + 2P, 1). Both of the audio with ``cfg.edge_silence`` added at each end
    (P samples; :func:`with_edge_silence`)."""
    audio = with_edge_silence(audio, cfg)
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
