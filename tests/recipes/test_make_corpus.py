"""recipes/make_corpus.py: FSDD training takes are cut like the held-out takes some of the time."""

from __future__ import annotations

import numpy as np

from tests.recipes import load_recipe


def test_fsdd_training_takes_are_cut_at_the_word_or_keep_short_margins():
    """FSDD's held-out takes are cut at the word: a third of the training takes keep that cut (no
    margin: None), the rest get 0-0.2 s per end, so some margins are near zero too."""
    mc = load_recipe("make_corpus")
    rng = np.random.default_rng(0)
    pads = [mc.fsdd_pad(rng) for _ in range(3000)]
    assert 0.29 < sum(p is None for p in pads) / len(pads) < 0.38
    margins = np.array([m for p in pads if p is not None for m in p])
    assert margins.min() >= 0.0 and margins.max() <= 0.2
    assert 0.2 < np.mean(margins < 0.05) < 0.3  # uniform over 0-0.2 s: a quarter under 50 ms


def test_trim_keeps_the_word_plus_the_margin_it_is_given():
    mc = load_recipe("make_corpus")
    sr = mc.SR
    rng = np.random.default_rng(1)
    word = 0.5 * np.sin(2 * np.pi * 220 * np.arange(int(0.4 * sr)) / sr)
    quiet = 1e-4 * rng.standard_normal(int(0.5 * sr))
    take = np.concatenate([quiet, word, quiet]).astype(np.float32)  # 0.5 s of room noise each side
    tight = mc.trim(take, [0.0, 0.0])
    assert abs(len(tight) / sr - 0.4) < 0.04  # the word alone, within the 25 ms analysis window
    padded = mc.trim(take, [0.2, 0.1])
    assert abs(len(padded) / sr - 0.7) < 0.04
    assert np.abs(padded[: int(0.15 * sr)]).max() < 1e-3  # the margin is the recording's own quiet
