"""Training data: corpus directories -> cached log-mel features -> length-bucketed batches.

A corpus directory holds ``transcripts.tsv`` (``id<TAB>text``) and ``audio/{id}.wav`` (or
the audio files next to the tsv), the layout ``i3d-edge eval`` reads too. Features come from
the one numpy implementation (:func:`i3d_edge.features.log_mel`), computed once and cached as a
float16 memory map next to the run (``feats-<hash>.npy`` + ``index-<hash>.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import FeatureConfig
from ..corpus import read_corpus
from ..errors import I3dEdgeError
from ..features import log_mel, normalize, normalize_waveform, with_edge_silence
from ..tokens import TokenTable

__all__ = ["FeatureSet", "spec_augment"]

def _features(args: tuple[Path, FeatureConfig]) -> np.ndarray:
    from ..audio import load_audio

    path, cfg = args
    audio = with_edge_silence(load_audio(path, target_rate=cfg.sample_rate), cfg)  # as the runtime does
    if cfg.kind == "waveform":  # imported wav2vec2-style models read the samples themselves
        return audio.astype(np.float32)[:, None]  # (N, 1)
    return log_mel(audio, cfg).astype(np.float16)


@dataclass
class FeatureSet:
    """Cached features of one or more corpora, held as a float16 memory map."""

    feats: np.ndarray  # (total_frames, n_mels) float16, un-normalised log-mel; waveform: (samples, 1) float32
    offsets: np.ndarray  # (U,) start row of each utterance
    lengths: np.ndarray  # (U,) frames of each utterance
    texts: list[str]
    ids: list[str]

    @classmethod
    def build(cls, corpora: list[Path], cfg: FeatureConfig, cache_dir: Path, jobs: int = 2) -> FeatureSet:
        items = [it for c in corpora for it in read_corpus(c)]
        if not items:
            raise I3dEdgeError(f"no utterances found in {', '.join(map(str, corpora))}")
        raw = replace(cfg, mean=(), std=())  # the cache holds un-normalised features: statistics are not in the key
        key = hashlib.sha256(json.dumps([[str(p), t] for _, p, t in items] + [raw.to_dict()]).encode()).hexdigest()[:16]
        feats_path, index_path = cache_dir / f"feats-{key}.npy", cache_dir / f"index-{key}.json"
        if not index_path.exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with ProcessPoolExecutor(jobs) as pool:
                arrays = list(pool.map(_features, [(p, cfg) for _, p, _ in items], chunksize=64))
            lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
            # per-process temporary names: runs sharing one cache may build the same key at once
            tmp = feats_path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, np.concatenate(arrays, axis=0))
            os.replace(tmp, feats_path)
            tmp_index = index_path.with_suffix(f".{os.getpid()}.tmp")
            tmp_index.write_text(json.dumps({"lengths": lengths.tolist(), "ids": [i for i, _, _ in items],
                                             "texts": [t for _, _, t in items]}))
            os.replace(tmp_index, index_path)
        index = json.loads(index_path.read_text())
        lengths = np.asarray(index["lengths"], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        return cls(np.load(feats_path, mmap_mode="r"), offsets, lengths, index["texts"], index["ids"])

    def __len__(self) -> int:
        return len(self.lengths)

    def stats(self, max_rows: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
        """Per-band mean and std over (a strided sample of) all frames."""
        step = max(1, self.feats.shape[0] // max_rows)
        sample = np.asarray(self.feats[::step], dtype=np.float64)
        return sample.mean(0), sample.std(0) + 1e-5

    def utterance(self, i: int) -> np.ndarray:
        return np.asarray(self.feats[self.offsets[i]: self.offsets[i] + self.lengths[i]], dtype=np.float32)

    def batches(self, max_frames: int, rng: np.random.Generator | None, min_frames: int = 7,
                max_len: int = 2000) -> list[np.ndarray]:
        """Index batches of similar length whose padded size stays under ``max_frames``."""
        ok = np.flatnonzero((self.lengths >= min_frames) & (self.lengths <= max_len))
        if rng is not None:  # jitter lengths so buckets differ between epochs
            order = ok[np.argsort(self.lengths[ok] + rng.uniform(0, 30, ok.size), kind="stable")]
        else:
            order = ok[np.argsort(self.lengths[ok], kind="stable")]
        batches: list[np.ndarray] = []  # (n,) indices each
        current: list[int] = []
        longest = 0
        for i in order:
            longest_new = max(longest, int(self.lengths[i]))
            if current and longest_new * (len(current) + 1) > max_frames:
                batches.append(np.array(current))
                current, longest_new = [], int(self.lengths[i])
            current.append(i)
            longest = longest_new
        if current:
            batches.append(np.array(current))
        if rng is not None:
            rng.shuffle(batches)
        return batches

    def collate(self, idx: np.ndarray, cfg: FeatureConfig, tokens: TokenTable,
                augment: np.random.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """-> features (B, T, F), features_lens (B,), targets (sum L,), target_lens (B,)."""
        if cfg.kind == "waveform":
            feats = [normalize_waveform(self.utterance(i)[:, 0])[:, None] if cfg.do_normalize
                     else self.utterance(i) for i in idx]
            augment = None  # SpecAugment masks log-mel bands; waveform models train without it
        else:
            feats = [normalize(self.utterance(i), cfg) for i in idx]
        if augment is not None:
            feats = [spec_augment(f, augment) for f in feats]
        lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        x = torch.zeros(len(feats), int(lens.max()), feats[0].shape[1])
        for j, f in enumerate(feats):
            x[j, : f.shape[0]] = torch.from_numpy(f)
        ids = [tokens.encode(self.texts[i]) for i in idx]
        targets = torch.tensor([t for seq in ids for t in seq], dtype=torch.long)
        target_lens = torch.tensor([len(seq) for seq in ids], dtype=torch.long)
        return x, lens, targets, target_lens


def spec_augment(feats: np.ndarray, rng: np.random.Generator, n_freq: int = 2, max_freq: int = 15,
                 time_ratio: float = 0.05, n_time: int = 2) -> np.ndarray:
    """SpecAugment on normalised (T, F) features: frequency and time masks set to 0 (the mean)."""
    out = feats.copy()
    t, f = out.shape
    for _ in range(n_freq):
        w = int(rng.integers(0, max_freq + 1))
        s = int(rng.integers(0, max(1, f - w)))
        out[:, s: s + w] = 0.0
    max_t = max(1, int(time_ratio * t))
    for _ in range(n_time):
        w = int(rng.integers(0, max_t + 1))
        s = int(rng.integers(0, max(1, t - w)))
        out[s: s + w] = 0.0
    return out

