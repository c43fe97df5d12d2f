"""Numpy log-mel features, token table and CTC decoding (shared by training and runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from i3d_edge.config import FeatureConfig, encoder_lengths
from i3d_edge.ctc import greedy_decode
from i3d_edge.errors import ConfigError
from i3d_edge.features import (
    batch_features,
    extract_features,
    log_mel,
    mel_filterbank,
    normalize,
    normalize_waveform,
    num_frames,
    with_edge_silence,
)
from i3d_edge.tokens import TokenTable, normalize_text
from tests.conftest import speechlike

CFG = FeatureConfig()


@pytest.mark.parametrize("n", [0, 399, 400, 401, 559, 560, 16000, 16123])
def test_frame_count(n):
    feats = log_mel(np.zeros(n, dtype=np.float32), CFG)
    assert feats.shape == (num_frames(n, CFG), 80)
    assert feats.shape[0] == (0 if n < 400 else 1 + (n - 400) // 160)


def test_min_samples_gives_one_encoder_frame():
    assert encoder_lengths(num_frames(CFG.min_samples, CFG)) == 1
    assert encoder_lengths(num_frames(CFG.min_samples - 1, CFG)) == 0


def test_sine_energy_lands_in_the_right_band():
    sr = CFG.sample_rate
    fb = mel_filterbank(CFG)
    for hz in (300.0, 1000.0, 4000.0):
        t = np.arange(sr) / sr
        feats = log_mel(0.5 * np.sin(2 * np.pi * hz * t), CFG)
        band = int(np.argmax(feats.mean(0)))
        fft_bin = round(hz / (sr / CFG.n_fft))
        assert fb[band, fft_bin] > 0, (hz, band)


def test_log_mel_matches_direct_dft():
    """The vectorised path equals a straightforward per-frame computation within 1e-4."""
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(3000).astype(np.float32) * 0.1
    feats = log_mel(audio, CFG)
    win = np.hanning(CFG.win_length + 1)[:-1]
    for i in range(feats.shape[0]):
        frame = audio[i * CFG.hop_length: i * CFG.hop_length + CFG.win_length].astype(np.float64)
        frame = (frame - frame.mean()) * win
        power = np.abs(np.fft.rfft(frame, CFG.n_fft)) ** 2
        ref = np.log(np.maximum(mel_filterbank(CFG).astype(np.float64) @ power, 1e-10))
        np.testing.assert_allclose(feats[i], ref, atol=1e-4, rtol=1e-4)


def _direct(audio: np.ndarray, cfg: FeatureConfig, i: int) -> np.ndarray:
    """Frame i's log-mel the straightforward way (float64, dense filterbank): (n_mels,)."""
    frame = audio[i * cfg.hop_length: i * cfg.hop_length + cfg.win_length].astype(np.float64)
    frame = (frame - frame.mean()) * np.hanning(cfg.win_length + 1)[:-1]
    power = np.abs(np.fft.rfft(frame, cfg.n_fft)) ** 2
    return np.log(np.maximum(mel_filterbank(cfg).astype(np.float64) @ power, 1e-10))


@pytest.mark.parametrize("cfg", [CFG, FeatureConfig(n_mels=128, n_fft=256, win_length=200, hop_length=80)],
                         ids=["default", "bands-without-bins"])
def test_log_mel_blocks_and_offset_match_direct_dft(cfg):
    """Several FFT blocks, a DC offset (removed per frame) and, in the second config, mel bands
    narrower than one FFT bin (they stay at the floor) all match the direct computation."""
    fb = mel_filterbank(cfg)
    rng = np.random.default_rng(1)
    audio = (0.3 + 0.1 * rng.standard_normal(cfg.sample_rate * 3)).astype(np.float32)  # 3 s
    feats = log_mel(audio, cfg)
    assert feats.shape[0] > 256  # more than two blocks of frames
    for i in [*range(0, feats.shape[0], 37), feats.shape[0] - 1]:
        np.testing.assert_allclose(feats[i], _direct(audio, cfg, i), atol=1e-4, rtol=1e-4)
    empty = ~fb.any(axis=1)
    assert empty.any() == (cfg.n_mels == 128)
    np.testing.assert_array_equal(feats[:, empty], np.float32(np.log(1e-10)))


def test_normalize_and_batch():
    cfg = FeatureConfig(mean=[1.0] * 80, std=[2.0] * 80)
    out = normalize(np.full((5, 80), 3.0, dtype=np.float32), cfg)
    np.testing.assert_allclose(out, 1.0)
    feats, lens = batch_features([np.ones((3, 80), np.float32), np.ones((5, 80), np.float32)])
    assert feats.shape == (2, 5, 80) and lens.tolist() == [3, 5] and feats[0, 3:].sum() == 0


def test_feature_config_validation():
    with pytest.raises(ConfigError):
        FeatureConfig(win_length=1024, n_fft=512)
    with pytest.raises(ConfigError):
        FeatureConfig(std=[0.0] * 80)
    assert FeatureConfig.from_dict(FeatureConfig(mean=[0.5] * 80, std=[1.0] * 80).to_dict()).mean[0] == 0.5
    for bad in (-0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ConfigError, match="edge_silence must be 0-1 seconds"):
            FeatureConfig(edge_silence=bad)


def test_edge_silence_is_zeros_at_each_end_before_the_features():
    cfg = FeatureConfig(edge_silence=0.15)
    audio = speechlike(0.7)
    padded = with_edge_silence(audio, cfg)
    assert padded.shape == (audio.size + 2 * 2400,)
    assert not padded[:2400].any() and not padded[-2400:].any()
    np.testing.assert_array_equal(padded[2400:-2400], audio)
    np.testing.assert_array_equal(extract_features(audio, cfg), extract_features(padded, FeatureConfig()))
    assert FeatureConfig.from_dict(cfg.to_dict()).edge_silence == 0.15
    np.testing.assert_array_equal(with_edge_silence(audio, FeatureConfig()), audio)  # the default adds nothing


@pytest.mark.parametrize(("raw", "norm"), [
    ("Hello, World!", "hello world"),
    ("Don't  STOP-believing.", "don't stop believing"),
    ("'quoted' text", "quoted text"),
    ("  ", ""),
])
def test_normalize_text(raw, norm):
    assert normalize_text(raw) == norm


def test_token_round_trip():
    table = TokenTable()
    ids = table.encode("It's 4 you!")
    assert table.decode(ids) == "it's you"
    with pytest.raises(ConfigError):
        TokenTable(("a", "b"))


def test_greedy_decode_collapses_and_times():
    #            frames: 0  1  2  3  4  5  6
    best = np.array([0, 3, 3, 0, 3, 4, 4])
    log_probs = np.full((7, 5), -10.0)
    log_probs[np.arange(7), best] = 0.0
    spans = greedy_decode(log_probs)
    assert [(s.id, s.start, s.end) for s in spans] == [(3, 1, 3), (3, 4, 5), (4, 5, 7)]
    assert greedy_decode(log_probs, length=3)[0].end == 3
    assert greedy_decode(log_probs[:0]) == []


def test_normalize_waveform_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)  # mean 2.5, variance 1.25
    out = normalize_waveform(x)
    assert out.dtype == np.float32 and out.shape == (4,)
    np.testing.assert_allclose(out, (x - 2.5) / np.sqrt(1.25 + 1e-7), rtol=1e-6)
    assert normalize_waveform(np.array([5.0])).tolist() == [0.0]  # one sample: zero, not NaN
    assert normalize_waveform(np.zeros(0)).shape == (0,)


def test_normalize_waveform_matches_the_hugging_face_feature_extractor():
    transformers = pytest.importorskip("transformers")
    audio = (3.0 * speechlike(1.3, seed=4) + 0.1).astype(np.float32)
    extractor = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                                      do_normalize=True, return_attention_mask=False)
    reference = extractor(audio, sampling_rate=16000, return_tensors="np").input_values[0]  # (N,)
    np.testing.assert_allclose(normalize_waveform(audio), reference, atol=2e-5)


@pytest.mark.parametrize("do_normalize", [False, True])
def test_waveform_features_are_the_samples(do_normalize):
    cfg = FeatureConfig(kind="waveform", n_mels=1, win_length=400, n_fft=400, hop_length=320,
                        do_normalize=do_normalize)
    audio = (2.0 * speechlike(0.5, seed=5) + 0.05).astype(np.float64)
    feats = extract_features(audio, cfg)
    assert feats.shape == (audio.size, 1) and feats.dtype == np.float32 and feats.flags.c_contiguous
    want = normalize_waveform(audio) if do_normalize else audio.astype(np.float32)
    np.testing.assert_array_equal(feats[:, 0], want)
    if do_normalize:
        assert abs(float(feats.mean())) < 1e-4 and abs(float(feats.std()) - 1.0) < 1e-3
    assert num_frames(audio.size, cfg) == audio.size  # one frame per sample
    assert num_frames(399, cfg) == 399  # even below one window (the log-mel rule would say 0)
