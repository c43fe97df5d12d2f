"""Behaviour against values written down by hand, never against the repository's own code.

Parity tests elsewhere compare the runtime with the same repository's PyTorch code: a bug made
in both places (e.g. keeping the *least* probable modules) passes them. These tests compare
gate selection, CTC decoding, scoring and the log-mel features with expected values computed
independently (by hand, or by a textbook formula written out here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from i3d_edge.config import FeatureConfig
from i3d_edge.ctc import TokenSpan, greedy_decode, runs
from i3d_edge.features import LOG_FLOOR, batch_features, log_mel, normalize, num_frames
from i3d_edge.gating import local_budget, select_gates
from i3d_edge.scoring import edit_distance, score

T, F = True, False

# (probabilities (B, G), threshold, max_modules, expected (B, G)), worked out by hand
GATE_TABLES = [
    # p > threshold: 0.5 itself is off; no budget
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, None, [[T, F, T, T, F, T]]),
    # budget 2: the two most probable (0.9, 0.7), not the first two above the threshold
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, 2, [[T, F, F, F, F, T]]),
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, 3, [[T, F, T, F, F, T]]),
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, 0, [[F, F, F, F, F, F]]),
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, 6, [[T, F, T, T, F, T]]),
    ([[0.9, 0.2, 0.6, 0.51, 0.5, 0.7]], 0.5, 9, [[T, F, T, T, F, T]]),
    # the budget ranks every module; one below the threshold still uses a place
    ([[0.45, 0.44, 0.9, 0.1]], 0.5, 2, [[F, F, T, F]]),
    ([[0.4, 0.95, 0.3, 0.9]], 0.5, 1, [[F, T, F, F]]),
    # ties: the earlier module wins
    ([[0.8, 0.3, 0.8, 0.8]], 0.5, 2, [[T, F, T, F]]),
    # more than 16 modules with ties (numpy's default sort is stable only on short rows): 0.95 at
    # every 7th module, 0.9 elsewhere; a budget of 8 keeps the six 0.95s, then modules 1 and 2
    ([[0.95 if i % 7 == 0 else 0.9 for i in range(40)]], 0.5, 8,
     [[i in (0, 7, 14, 21, 28, 35, 1, 2) for i in range(40)]]),
    # rows are independent (a batch of two with different winners)
    ([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]], 0.05, 1, [[F, F, F, T], [T, F, F, F]]),
    ([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]], 0.25, None, [[F, F, T, T], [T, T, F, F]]),
    ([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]], 0.0, 3, [[F, T, T, T], [T, T, T, F]]),
    # threshold 0: a probability of exactly 0 is off
    ([[0.0, 1.0, 0.0]], 0.0, None, [[F, T, F]]),
]


@pytest.mark.parametrize(("probs", "threshold", "max_modules", "expected"), GATE_TABLES)
def test_numpy_gate_selection_matches_hand_tables(probs, threshold, max_modules, expected):
    got = select_gates(np.array(probs, dtype=np.float32), threshold, max_modules)
    assert got.dtype == bool and got.tolist() == expected


@pytest.mark.parametrize(("probs", "threshold", "max_modules", "expected"), GATE_TABLES)
def test_torch_gate_selection_matches_hand_tables(probs, threshold, max_modules, expected):
    torch = pytest.importorskip("torch")
    from i3d_edge.models.i3d import select_gates as torch_select_gates

    got = torch_select_gates(torch.tensor(probs, dtype=torch.float32), threshold, max_modules)
    assert got.tolist() == expected


def test_local_budget_runs_modules_in_execution_order():
    on = np.array([[T, T], [T, T], [T, T], [T, T], [F, T], [T, F]])  # (B, 2): MHA, FFN of one layer
    executed = np.array([0, 1, 2, 3, 1, 1])  # modules already run per row
    out = local_budget(on, executed, 2)
    assert out.tolist() == [[T, T], [T, F], [F, F], [F, F], [F, T], [T, F]]
    assert executed.tolist() == [2, 2, 2, 3, 2, 2]
    assert on.tolist() == [[T, T], [T, T], [T, T], [T, T], [F, T], [T, F]]  # the input is not changed
    executed = np.array([0, 5, 0, 0, 0, 0])
    out = local_budget(on, executed, None)  # no budget: everything asked for runs and is counted
    assert out.tolist() == on.tolist() and executed.tolist() == [2, 7, 2, 2, 1, 1]
    executed = np.array([0, 0, 0, 0, 0, 0])
    assert local_budget(on, executed, 0).tolist() == [[F, F]] * 6 and executed.tolist() == [0] * 6
    assert local_budget(on, np.array([1, 0, 0, 0, 0, 0]), 1).tolist()[:2] == [[F, F], [T, F]]


# ------------------------------------------------------------------------------------ CTC
def one_hot_path(path: list[int], vocab: int = 5) -> np.ndarray:
    lp = np.full((len(path), vocab), -5.0, dtype=np.float32)  # (T, V)
    lp[np.arange(len(path)), path] = -0.1
    return lp


def test_greedy_decode_hand_cases():
    # frames: blank a a blank a b b blank   -> a (1..3), a (4..5), b (5..7)
    spans = greedy_decode(one_hot_path([0, 1, 1, 0, 1, 2, 2, 0]))
    assert spans == [TokenSpan(1, 1, 3), TokenSpan(1, 4, 5), TokenSpan(2, 5, 7)]
    assert greedy_decode(one_hot_path([0, 1, 1, 0, 1, 2, 2, 0]), 4) == [TokenSpan(1, 1, 3)]
    assert greedy_decode(one_hot_path([0, 1, 1, 0, 1, 2, 2, 0]), 0) == []
    assert greedy_decode(one_hot_path([3])) == [TokenSpan(3, 0, 1)]
    assert greedy_decode(one_hot_path([0, 0, 0])) == []
    assert greedy_decode(one_hot_path([4, 4, 4, 3])) == [TokenSpan(4, 0, 3), TokenSpan(3, 3, 4)]


def test_runs_hand_cases():
    assert runs(np.array([2, 2, 0, 1, 1, 1])) == [TokenSpan(2, 0, 2), TokenSpan(0, 2, 3), TokenSpan(1, 3, 6)]
    assert runs(np.array([7])) == [TokenSpan(7, 0, 1)]
    assert runs(np.array([], dtype=np.int64)) == []


# ------------------------------------------------------------------------------------ scoring
def test_edit_distance_hand_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
    assert edit_distance("abc", "abc") == 0 and edit_distance("abc", "axc") == 1
    assert edit_distance("ab", "ba") == 2  # no transpositions
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("a b c".split(), "a c".split()) == 1


def test_score_hand_computed_corpus():
    """refs 'the cat sat' (3 words, 11 chars) and 'zero one two' (3 words, 12 chars);
    hyps 'the cat sat' and 'zero': 2 word errors / 6, 8 character errors / 23, one exact."""
    s = score(["The cat sat.", "zero one two"], ["the cat sat", "zero"])
    assert (s.words, s.utterances) == (6, 2)
    assert s.wer == pytest.approx(2 / 6) and s.cer == pytest.approx(8 / 23)
    assert s.sentence_accuracy == 0.5
    swapped = score(["the cat sat", "zero"], ["The cat sat.", "zero one two"])  # refs and hyps swapped
    assert swapped.wer == pytest.approx(2 / 4) and swapped.cer == pytest.approx(8 / 15) and swapped.words == 4
    # errors spread over utterances: 'one two'/'one' (1 word, 4 chars), 'three' exact, 'four'/'for'
    # (1 word, 1 char): WER 2/4, CER 5/16, one exact of three
    s = score(["one two", "three", "four"], ["one", "three", "for"])
    assert (s.wer, s.cer, s.sentence_accuracy, s.words) == (pytest.approx(2 / 4), pytest.approx(5 / 16),
                                                            pytest.approx(1 / 3), 4)
    one = score(["a"], ["b"])  # one word of one character: both rates are exactly 1
    assert (one.wer, one.cer, one.sentence_accuracy) == (1.0, 1.0, 0.0)
    assert score(["a"], ["a"]).sentence_accuracy == 1.0
    assert score([], []).wer == 0.0 and score([], []).utterances == 0
    with pytest.raises(ValueError):
        score(["a"], [])


# ------------------------------------------------------------------------------------ features
CFG = FeatureConfig()


def textbook_log_mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel written from the textbook, in float64 and plain loops: frames of ``win_length``
    every ``hop_length`` (no padding), DC removed per frame, periodic Hann window
    0.5 - 0.5 cos(2 pi n / N), a direct DFT (sum over samples, zero-padded to ``n_fft``), power,
    and a triangular filterbank on the HTK mel scale mel = 2595 log10(1 + f / 700) with
    ``n_mels`` filters whose edges are equally spaced in mel between f_min and f_max."""
    n_frames = 1 + (len(audio) - cfg.win_length) // cfg.hop_length
    n = np.arange(cfg.win_length)
    window = 0.5 - 0.5 * np.cos(2 * math.pi * n / cfg.win_length)
    bins = cfg.n_fft // 2 + 1
    dft = np.exp(-2j * math.pi * np.outer(np.arange(bins), n) / cfg.n_fft)  # (F, win): zero padding is implicit

    def mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    def hz(m: float) -> float:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    lo, hi = mel(cfg.f_min), mel(cfg.f_max)
    edges = [hz(lo + (hi - lo) * i / (cfg.n_mels + 1)) for i in range(cfg.n_mels + 2)]
    fbank = np.zeros((cfg.n_mels, bins))
    for m in range(cfg.n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(bins):
            f = k * cfg.sample_rate / cfg.n_fft
            if left < f <= centre:
                fbank[m, k] = (f - left) / (centre - left)
            elif centre < f < right:
                fbank[m, k] = (right - f) / (right - centre)
    out = np.empty((n_frames, cfg.n_mels))
    for t in range(n_frames):
        frame = audio[t * cfg.hop_length: t * cfg.hop_length + cfg.win_length].astype(np.float64)
        spectrum = dft @ ((frame - frame.mean()) * window)
        power = spectrum.real**2 + spectrum.imag**2
        out[t] = np.log(np.maximum(fbank @ power, 1e-10))
    return out


def test_log_mel_matches_a_textbook_reference():
    rng = np.random.default_rng(0)
    t = np.arange(4000) / CFG.sample_rate
    audio = (0.3 * np.sin(2 * math.pi * 440 * t) + 0.2 * np.sin(2 * math.pi * 2500 * t)
             + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    feats = log_mel(audio, CFG)
    ref = textbook_log_mel(audio, CFG)
    assert feats.shape == ref.shape == (1 + (4000 - 400) // 160, 80) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, ref, atol=2e-3, rtol=1e-4)


def test_log_mel_of_silence_is_the_floor_and_one_frame_per_hop():
    feats = log_mel(np.zeros(400 + 3 * 160, dtype=np.float32), CFG)
    assert feats.shape == (4, 80)
    np.testing.assert_allclose(feats, math.log(LOG_FLOOR), rtol=1e-6)
    assert [num_frames(n, CFG) for n in (0, 399, 400, 559, 560, 721)] == [0, 0, 1, 1, 2, 3]


def test_normalize_and_batch_hand_values():
    cfg = FeatureConfig(mean=[float(i) for i in range(80)], std=[2.0] * 40 + [4.0] * 40)
    feats = np.tile(np.arange(80, dtype=np.float32) + 8.0, (3, 1))  # (3, 80): band i holds i + 8
    out = normalize(feats, cfg)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, :40], 4.0)  # (i + 8 - i) / 2
    np.testing.assert_allclose(out[:, 40:], 2.0)  # (i + 8 - i) / 4
    np.testing.assert_array_equal(normalize(feats, FeatureConfig()), feats)  # no statistics: unchanged
    padded, lens = batch_features([np.full((2, 3), 1.0, np.float32), np.full((4, 3), 2.0, np.float32)])
    assert lens.tolist() == [2, 4] and lens.dtype == np.int64 and padded.shape == (2, 4, 3)
    assert padded[0].tolist() == [[1.0] * 3] * 2 + [[0.0] * 3] * 2 and padded[1].tolist() == [[2.0] * 3] * 4
    assert padded.dtype == np.float32 and normalize(feats.astype(np.float64), cfg).dtype == np.float32
    empty, empty_lens = batch_features([np.zeros((0, 3), np.float32)])  # no frames: nothing padded in
    assert empty.shape == (1, 0, 3) and empty_lens.tolist() == [0]
