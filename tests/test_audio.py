"""Audio loading: formats, resampling, channels, PCM scaling, streaming and one-line errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from i3d_edge.audio import AudioInfo, audio_info, load_audio, stream_audio, to_float_mono
from i3d_edge.config import FeatureConfig
from i3d_edge.errors import AudioError
from tests.conftest import speechlike

MIN = FeatureConfig().min_samples  # 1360 samples = 85 ms at 16 kHz


def tone(seconds: float, sr: int, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spec.argmax()])


@pytest.mark.parametrize(("fmt", "subtype", "atol"), [("wav", "PCM_16", 1e-4), ("wav", "FLOAT", 0.0),
                                                      ("flac", "PCM_16", 1e-4), ("ogg", "VORBIS", 0.1)])
def test_formats_round_trip(tmp_path, fmt, subtype, atol):
    x = speechlike(1.5)
    path = tmp_path / f"clip.{fmt}"
    sf.write(path, x, 16000, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and y.size == x.size
    np.testing.assert_allclose(y, x, atol=atol + 1e-6)
    assert audio_info(path) == AudioInfo(x.size, 16000, 1)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k(tmp_path, sr):
    path = tmp_path / f"tone{sr}.wav"
    sf.write(path, tone(2.0, sr), sr, subtype="FLOAT")
    y = load_audio(path)
    assert abs(y.size - 32000) <= 1
    assert peak_hz(y) == pytest.approx(440.0, abs=1.0)
    assert np.abs(y[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(load_audio(tone(2.0, sr), sr), y, atol=1e-6)  # arrays take the same path


def test_stereo_int16_file_is_averaged_and_scaled(tmp_path):
    left, right = tone(1.0, 44100, 300, 0.4), tone(1.0, 44100, 300, 0.2)
    pcm = (np.stack([left, right], axis=1) * 32767).astype(np.int16)  # (N, 2)
    sf.write(tmp_path / "st.wav", pcm, 44100, subtype="PCM_16")
    y = load_audio(tmp_path / "st.wav")
    assert np.abs(y[2000:-2000]).max() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(load_audio(pcm, 44100), y, atol=1e-4)  # same thing as an array


@pytest.mark.parametrize(("dtype", "full"), [(np.int16, 32768), (np.int32, 2**31), (np.int8, 128)])
def test_integer_arrays_are_scaled_by_their_range(dtype, full):
    x = np.array([0, full // 2, -full, full - 1], dtype=dtype)
    np.testing.assert_allclose(to_float_mono(x), [0.0, 0.5, -1.0, (full - 1) / full], rtol=1e-6)


def test_unsigned_pcm_is_centred():
    np.testing.assert_allclose(to_float_mono(np.array([0, 128, 255], dtype=np.uint8)), [-1.0, 0.0, 127 / 128])


def test_channel_layouts():
    a, b = np.full(100, 0.2, np.float32), np.full(100, 0.4, np.float32)
    np.testing.assert_allclose(to_float_mono(np.stack([a, b], axis=1)), 0.3)  # (N, C)
    np.testing.assert_allclose(to_float_mono(np.stack([a, b])), 0.3)  # (C, N) is recognised
    eight = np.tile(np.linspace(-0.8, 0.8, 8, dtype=np.float32), (3000, 1))  # 8 channels
    np.testing.assert_allclose(to_float_mono(eight), 0.0, atol=1e-7)
    assert to_float_mono(np.zeros(10, np.float64)).dtype == np.float32


def test_stream_equals_whole_and_blocks_stay_small(tmp_path):
    x = speechlike(12.0, sr=48000, seed=3)
    sf.write(tmp_path / "long.flac", x, 48000)
    blocks = list(stream_audio(tmp_path / "long.flac", block_seconds=1.0))
    assert len(blocks) >= 12 and max(b.size for b in blocks) <= 1.05 * 16000
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(tmp_path / "long.flac"))


@settings(max_examples=25, deadline=None)
@given(block=st.floats(0.01, 2.0), rate=st.sampled_from([8000, 16000, 44100, 48000]))
def test_block_size_never_changes_the_samples(block, rate):
    x = speechlike(2.5, sr=rate, seed=7)
    whole = load_audio(x, rate)
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(x, rate, block_seconds=block))), whole)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=50))
def test_int16_scaling_stays_in_range(values):
    y = to_float_mono(np.array(values, dtype=np.int16))
    assert y.dtype == np.float32 and (y >= -1).all() and (y < 1).all()


# ---------------------------------------------------------------- errors: one line, naming the input


def one_line_error(source, *args, match: str, **kw) -> str:
    with pytest.raises(AudioError, match=match) as info:
        load_audio(source, *args, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_and_directory(tmp_path):
    assert one_line_error(tmp_path / "nope.wav", match="no such file").startswith(str(tmp_path / "nope.wav"))
    (tmp_path / "dir.wav").mkdir()
    one_line_error(tmp_path / "dir.wav", match="is a directory")


def test_garbage_empty_and_header_only(tmp_path):
    (tmp_path / "noise.wav").write_bytes(os.urandom(4000))
    one_line_error(tmp_path / "noise.wav", match="not a readable audio file")
    (tmp_path / "zero.wav").write_bytes(b"")
    one_line_error(tmp_path / "zero.wav", match="empty file")
    sf.write(tmp_path / "header.wav", np.zeros(0, np.float32), 16000)
    one_line_error(tmp_path / "header.wav", match="empty audio")
    one_line_error(np.zeros(0, np.float32), 16000, match="empty audio")


def test_truncated_flac_keeps_what_decodes_with_a_warning(tmp_path):
    from i3d_edge.errors import AudioWarning

    x = speechlike(3.0)
    sf.write(tmp_path / "full.flac", x, 16000)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.warns(AudioWarning, match=r"cut.flac: damaged or truncated after (\d+\.\d\d) s") as caught:
        got = load_audio(tmp_path / "cut.flac")
    assert len(caught) == 1 and 0.5 * 16000 < got.size < 1.6 * 16000
    want = sf.read(tmp_path / "full.flac", dtype="float32")[0][: got.size]
    np.testing.assert_array_equal(got, want)  # the decodable start, sample for sample
    (tmp_path / "head.flac").write_bytes(data[:200])  # nothing decodes: still an error
    one_line_error(tmp_path / "head.flac", match="corrupt or truncated|not a readable")


def test_too_short_says_how_long_and_the_minimum(tmp_path):
    sf.write(tmp_path / "short.wav", speechlike(0.05), 16000)
    msg = one_line_error(tmp_path / "short.wav", match="too short")
    assert "0.050 s" in msg and "0.085 s" in msg and str(MIN) in msg
    one_line_error(np.zeros(1, np.float32), 16000, match="too short")  # one sample
    assert load_audio(np.zeros(MIN, np.float32), 16000).size == MIN  # exactly enough


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf(tmp_path, bad):
    x = speechlike(1.0)
    x[8000] = bad
    msg = one_line_error(x, 16000, match="NaN or infinite")
    assert "0.500 s" in msg
    sf.write(tmp_path / "bad.wav", x, 16000, subtype="FLOAT")
    one_line_error(tmp_path / "bad.wav", match="NaN or infinite")


def test_extreme_amplitude_and_full_scale():
    one_line_error(speechlike(1.0) * 1e30, 16000, match="far outside")
    full = np.where(speechlike(1.0) > 0, 32767, -32768).astype(np.int16)  # clipped square wave
    assert np.abs(load_audio(full, 16000)).max() <= 1.05


@pytest.mark.parametrize(("args", "match"), [
    ((np.zeros(16000, np.float32),), "sample_rate is required"),
    ((np.zeros(16000, np.float32), 0), "sample_rate must be a positive integer"),
    ((np.zeros(16000, np.complex64), 16000), "unsupported sample type"),
    ((np.zeros(16000, bool), 16000), "unsupported sample type"),
    ((np.zeros((2, 2, 4000), np.float32), 16000), "expected a 1-D"),
    ((np.zeros((100, 100), np.float32), 16000), "cannot tell samples from channels"),
    ((12345,), "expected a file path or a numpy array"),
])
def test_bad_arrays_and_arguments(args, match):
    one_line_error(*args, match=match)


def test_sample_rate_must_agree_with_the_file(tmp_path):
    sf.write(tmp_path / "a.wav", speechlike(1.0), 16000)
    one_line_error(tmp_path / "a.wav", 8000, match="file is 16000 Hz")
    assert load_audio(tmp_path / "a.wav", 16000).size == 16000


@pytest.mark.parametrize("rate", [1, 3999, 800_000])
def test_implausible_sample_rates_are_refused(tmp_path, rate):
    from i3d_edge.audio import MIN_SAMPLE_RATE

    assert MIN_SAMPLE_RATE == 4000
    with pytest.raises(AudioError, match=f"{rate} Hz is outside the supported"):
        load_audio(np.zeros(8000, np.float32), rate)
