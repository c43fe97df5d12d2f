"""Test audio of the benchmarks: deterministic speech-like synthesis, or real clips from a directory."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_RATE", "bench_audio", "real_speech", "speech_like"]

SAMPLE_RATE = 16000

_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (660, 1720, 2410),
           (300, 870, 2240), (570, 840, 2410), (440, 1020, 2240), (490, 1350, 1690))


def speech_like(seconds: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like audio, float32 (n,): syllables of formant-shaped harmonics with
    a moving pitch, fricative noise onsets, short gaps between words and longer pauses between
    sentences (so long audio has quiet points to cut at), over a faint noise floor."""
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = round(seconds * sr)
    out = np.zeros(n, dtype=np.float64)
    pos = int(rng.uniform(0.05, 0.2) * sr)
    f0_base = rng.uniform(95.0, 210.0)
    sentence_end = pos + int(rng.uniform(3.0, 9.0) * sr)
    while pos < n:
        for _ in range(int(rng.integers(1, 4))):  # one word: 1-3 syllables
            m = min(int(rng.uniform(0.09, 0.26) * sr), n - pos)
            if m <= 16:
                break
            if rng.random() < 0.35:  # fricative onset: high-passed noise burst
                k = min(m, int(rng.uniform(0.03, 0.08) * sr))
                out[pos:pos + k] += 0.04 * np.diff(rng.standard_normal(k + 1)) * np.hanning(k)
            t = np.arange(m) / sr
            f0 = f0_base * (1.0 + 0.06 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6))
                            + rng.uniform(-0.08, 0.08) * t / t[-1])  # (m,) Hz
            phase = 2 * np.pi * np.cumsum(f0) / sr  # (m,)
            harmonics = np.arange(1, max(2, int(3800 / f0_base)) + 1)  # (K,)
            formants = np.asarray(_VOWELS[int(rng.integers(len(_VOWELS)))]) * rng.uniform(0.9, 1.15)
            freqs = harmonics * f0_base
            amp = sum(w * np.exp(-0.5 * ((freqs - f) / bw) ** 2)
                      for f, w, bw in zip(formants, (1.0, 0.6, 0.3), (90.0, 120.0, 160.0), strict=True))
            amp = (amp + 0.02) / np.sqrt(harmonics)  # (K,) formant envelope with spectral tilt
            args = (phase[:, None] * harmonics[None, :] + rng.uniform(0, 6, harmonics.size)).astype(np.float32)
            wave = np.sin(args) @ amp.astype(np.float32)  # (m,): float32 is plenty and twice as fast
            out[pos:pos + m] += 0.25 * np.hanning(m) ** 0.5 * wave / amp.sum()
            pos += m
        pos += int(rng.uniform(0.03, 0.2) * sr)  # gap between words
        if pos >= sentence_end:  # pause between sentences, new speaker pitch
            pos += int(rng.uniform(0.35, 0.8) * sr)
            sentence_end = pos + int(rng.uniform(3.0, 9.0) * sr)
            f0_base = float(np.clip(f0_base * rng.uniform(0.85, 1.15), 90.0, 230.0))
    out += 0.003 * rng.standard_normal(n)
    return out.astype(np.float32)


def real_speech(seconds: float, source: Path, offset: int = 0) -> np.ndarray:
    """``seconds`` of speech from the audio files of ``source`` (sorted, joined with 0.25 s of
    silence, repeated as needed), starting at clip ``offset``."""
    from ...audio import load_audio

    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg"))
    if not files:
        raise FileNotFoundError(f"{source}: no audio files")
    clips = [load_audio(p, target_rate=SAMPLE_RATE) for p in files]
    gap = np.zeros(SAMPLE_RATE // 4, dtype=np.float32)
    need = round(seconds * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    have, i = 0, offset
    while have < need:
        clip = clips[i % len(clips)]
        pieces += [clip, gap]
        have += clip.size + gap.size
        i += 1
    return np.concatenate(pieces)[:need]


@functools.lru_cache(maxsize=16)
def bench_audio(seconds: float, source: str, seed: int) -> np.ndarray:
    """``seconds`` of test audio (n,) float32 at 16 kHz: ``speech_like`` when ``source`` is
    "synthetic", else real clips from the directory ``source`` (``seed`` picks the first clip)."""
    if source == "synthetic":
        return speech_like(seconds, seed=seed)
    return real_speech(seconds, Path(source).resolve(), offset=seed)
