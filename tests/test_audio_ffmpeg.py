"""audio.py's FFmpeg path (PyAV, the [av] extra): m4a, mp4, webm and aac files, written here with
PyAV itself, decode to the audio that was encoded; damaged ones are one line or a warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from i3d_edge.audio import audio_info, formats_label, load_audio, readable_formats, stream_audio
from i3d_edge.errors import AudioError, AudioWarning
from tests.conftest import speechlike
from tests.ffmpeg_files import FFMPEG_FILES, write_ffmpeg

pytest.importorskip("av", reason="the FFmpeg path needs the [av] extra (in [dev])")

RATE = 44100
SECONDS = 2.0


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    return np.stack([speechlike(SECONDS, sr=RATE, seed=1), speechlike(SECONDS, sr=RATE, seed=2)], axis=1)  # (N, 2)


@pytest.fixture(scope="module")
def files(tmp_path_factory, stereo) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ffmpeg")
    return {suffix: write_ffmpeg(d / f"phone.{suffix}", stereo, RATE) for suffix in FFMPEG_FILES}


def aligned_correlation(got: np.ndarray, want: np.ndarray, max_lag: int = 2048) -> float:
    """Correlation coefficient of ``got`` and ``want`` at the lag that best aligns them (lossy codecs
    add a few ms of priming)."""
    n = min(got.size, want.size) - max_lag
    best = max(range(0, max_lag), key=lambda lag: float(np.dot(got[lag:lag + n], want[:n])))
    return float(np.corrcoef(got[best:best + n], want[:n])[0, 1])


@pytest.mark.parametrize("suffix", sorted(FFMPEG_FILES))
def test_phone_formats_decode_to_the_encoded_audio(files, stereo, suffix):
    path = files[suffix]
    want = load_audio(stereo, RATE)  # the same samples as an array: channels averaged, resampled to 16 kHz
    got = load_audio(path)
    assert abs(got.size - want.size) < 0.1 * 16000  # codec priming and padding only
    assert aligned_correlation(got, want) > 0.95
    assert np.sqrt(np.mean(got ** 2)) == pytest.approx(np.sqrt(np.mean(want ** 2)), rel=0.1)
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (48000 if suffix == "webm" else RATE, 2)
    assert info.duration == pytest.approx(SECONDS, abs=0.1)


def test_streamed_blocks_equal_the_whole_file(files):
    whole = load_audio(files["m4a"])
    blocks = list(stream_audio(files["m4a"], block_seconds=0.25))
    assert len(blocks) >= 8 and max(b.size for b in blocks) <= 0.3 * 16000
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_a_video_file_gives_its_audio_track(tmp_path, files, stereo):
    film = write_ffmpeg(tmp_path / "camera.mp4", stereo, RATE, video=True)
    np.testing.assert_array_equal(load_audio(film), load_audio(files["mp4"]))  # the same AAC stream
    silent = write_ffmpeg(tmp_path / "silent.mp4", stereo, RATE, video=True, audio=False)
    with pytest.raises(AudioError, match=r"^\S*silent\.mp4: no audio stream in this mov file$"):
        load_audio(silent)


def test_damaged_files_are_one_line_or_a_warning(tmp_path, files):
    for suffix in ("m4a", "aac", "webm"):
        data = files[suffix].read_bytes()
        (tmp_path / f"cut.{suffix}").write_bytes(data[: len(data) // 2])
    cut = tmp_path / "cut.m4a"  # the index (moov) is at the end: nothing to decode without it
    with pytest.raises(AudioError) as info:
        load_audio(cut)
    message = str(info.value)
    assert message.startswith(f"{cut}: not a readable audio file (formats: WAV, FLAC")
    assert message.endswith("): Invalid data found when processing input") and "\n" not in message
    for suffix, what in (("aac", "damaged or truncated after"), ("webm", "truncated: the file declares 2.0")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kept = load_audio(tmp_path / f"cut.{suffix}")
        assert [str(w.message).split(": ", 1)[1][: len(what)] for w in caught] == [what]
        assert issubclass(caught[0].category, AudioWarning)
        assert 0.5 * SECONDS * 0.6 < kept.size / 16000 < 0.5 * SECONDS * 1.4  # about the half that is there
    (tmp_path / "notes.m4a").write_text("not audio\n" * 50)
    with pytest.raises(AudioError, match=r"notes\.m4a: not a readable audio file"):
        load_audio(tmp_path / "notes.m4a")


def test_an_audio_stream_ffmpeg_has_no_decoder_for_is_one_line(tmp_path, files):
    """A WebM whose audio track names an unknown codec (what a damaged header looks like to FFmpeg:
    an audio stream without a codec context) is one AudioError line, for reading and streaming."""
    data = files["webm"].read_bytes()
    assert data.count(b"A_OPUS") == 1
    unknown = tmp_path / "unknown.webm"
    unknown.write_bytes(data.replace(b"A_OPUS", b"A_QQQQ"))
    for read in (load_audio, audio_info, lambda p: next(iter(stream_audio(p)))):
        with pytest.raises(AudioError, match=r"^\S*unknown\.webm: its audio stream has no decoder \("):
            read(unknown)


def test_formats_say_which_library_reads_them():
    import av
    import soundfile

    label = formats_label(5)
    assert label.startswith("WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF, ... (libsndfile ")
    assert label.endswith(f"(libsndfile {soundfile.__libsndfile_version__}); M4A, MP4, AAC, WEBM, ... "
                          f"(FFmpeg, PyAV {av.__version__})")
    assert {"m4a", "mp4", "webm", "aac", "wav", "flac"} <= set(readable_formats()[1])
