"""Audio input for the runtime: files (any format libsndfile reads: WAV, FLAC, OGG Vorbis/Opus,
MP3, AIFF, ...; and, with the ``[av]`` extra, what FFmpeg reads through PyAV: M4A, MP4, AAC,
WebM, ...; see :func:`readable_formats`) or numpy arrays, any sample rate (resampled with soxr),
any channel count (averaged to mono), integer or float PCM.

Two entry points share one code path:

* :func:`stream_audio` yields mono float32 blocks at the target rate, decoding a file a block at
  a time, so an hour-long recording is never held in memory whole;
* :func:`load_audio` collects that stream into one array (for short clips).

Every problem a user can cause is a one-line :class:`~i3d_edge.errors.AudioError` that names
the file (or ``audio array``) and the cause. numpy, soundfile and soxr; PyAV (``av``) only for
files libsndfile cannot open, imported then.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import soundfile as sf
import soxr

from .config import FeatureConfig
from .errors import AudioError, AudioWarning, first_line
from .extras import install_hint

__all__ = ["ARRAY_NAME", "AUDIO_EXTENSIONS", "AudioInfo", "AudioSource", "Resampler", "audio_info", "check_rate",
           "check_samples", "describe", "formats_label", "load_audio", "readable_formats", "stream_audio",
           "to_float_mono"]

AudioSource = Union[str, "os.PathLike[str]", np.ndarray]
ARRAY_NAME = "audio array"  # how errors name in-memory input
BLOCK_SECONDS = 10.0  # decoding block of a file stream
RESAMPLE_QUALITY = "HQ"  # soxr quality preset
MAX_AMPLITUDE = 1e6  # float samples beyond this are refused (would overflow the log-mel power)
_MAX_CHANNELS = 64  # a 2-D array with more "channels" than this on both axes is refused


# libsndfile's format names (as soundfile reports them) -> the file extensions they go by. RAW
# (needs its parameters given) has none: it is never picked up from a directory.
AUDIO_EXTENSIONS = {
    "WAV": ("wav", "wave"), "WAVEX": ("wav",), "RF64": ("rf64",), "W64": ("w64",), "FLAC": ("flac",),
    "OGG": ("ogg", "oga", "opus"), "MP3": ("mp3",), "AIFF": ("aiff", "aif", "aifc"), "AU": ("au", "snd"),
    "CAF": ("caf",), "NIST": ("nist", "sph"), "IRCAM": ("sf",), "VOC": ("voc",), "PAF": ("paf",),
    "SVX": ("iff", "svx"), "MPC2K": ("mpc",), "SD2": ("sd2",), "WVE": ("wve",), "XI": ("xi",),
    "AVR": ("avr",), "SDS": ("sds",), "PVF": ("pvf",), "HTK": ("htk",), "MAT4": (), "MAT5": (),
}
_MAIN_FORMATS = ("WAV", "FLAC", "OGG", "MP3", "AIFF", "CAF", "AU", "W64", "RF64")  # named first, in this order
# What FFmpeg (PyAV, the [av] extra) adds, for the files libsndfile cannot open: name -> extensions.
FFMPEG_EXTENSIONS = {
    "M4A": ("m4a", "m4b"), "MP4": ("mp4",), "AAC": ("aac",), "WEBM": ("webm",), "MKV": ("mka", "mkv"),
    "MOV": ("mov",), "3GP": ("3gp",), "WMA": ("wma",), "AMR": ("amr",), "AC3": ("ac3",),
}
AV_EXTRA = install_hint("av")


def _av() -> Any:
    """The ``av`` module (PyAV), or None when the [av] extra is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


@functools.lru_cache(maxsize=1)
def ffmpeg_available() -> bool:
    """Whether PyAV (FFmpeg) is installed, for the formats libsndfile does not read."""
    return _av() is not None


@functools.lru_cache(maxsize=1)
def readable_formats() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the installed libsndfile reads: (format names, main ones first: ``("WAV", "FLAC", "OGG",
    "MP3", ...)``, the file extensions of those formats)."""
    names = [n for n in sf.available_formats() if n in AUDIO_EXTENSIONS]
    names.sort(key=lambda n: _MAIN_FORMATS.index(n) if n in _MAIN_FORMATS else len(_MAIN_FORMATS))
    extensions = [ext for n in names for ext in AUDIO_EXTENSIONS[n]]
    if ffmpeg_available():
        names += list(FFMPEG_EXTENSIONS)
        extensions += [ext for exts in FFMPEG_EXTENSIONS.values() for ext in exts]
    return tuple(names), tuple(dict.fromkeys(extensions))


def formats_label(limit: int | None = None) -> str:
    """Which formats are read, and by what: ``"WAV, FLAC, OGG (Vorbis, Opus), MP3, ... (libsndfile
    1.2.2); M4A, MP4, AAC, WEBM, ... (FFmpeg, PyAV 18.1.0)"``, the first ``limit`` of each library;
    without PyAV the second part says which extra adds them."""
    shown = [f"{n} (Vorbis, Opus)" if n == "OGG" else n for n in readable_formats()[0]
             if n not in ("WAVEX", "NIST", "IRCAM") and n not in FFMPEG_EXTENSIONS]
    more = limit is not None and len(shown) > limit
    label = f"{', '.join(shown[:limit])}{', ...' if more else ''} (libsndfile {sf.__libsndfile_version__})"
    ffmpeg = ", ".join(list(FFMPEG_EXTENSIONS)[:4]) + ", ..."
    av = _av()
    if av is None:
        return f"{label}; {ffmpeg} with the [av] extra ({AV_EXTRA})"
    return f"{label}; {ffmpeg} (FFmpeg, PyAV {av.__version__})"


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, without decoding it."""

    frames: int  # samples per channel (as declared by the header)
    sample_rate: int  # Hz
    channels: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def describe(source: AudioSource) -> str:
    """How messages name an input: the path as given, or ``audio array``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return ARRAY_NAME if isinstance(source, np.ndarray) else f"{type(source).__name__} input"


def _check_path(path: Path, name: str) -> None:
    try:
        if not path.exists():
            raise AudioError(f"{name}: no such file")
        if path.is_dir():
            raise AudioError(f"{name}: is a directory, not an audio file")
        if not os.access(path, os.R_OK):
            raise AudioError(f"{name}: cannot read (permission denied)")
        if path.stat().st_size == 0:
            raise AudioError(f"{name}: empty file (0 bytes)")
    except OSError as exc:  # e.g. a name too long, a loop of symlinks: stat itself fails
        raise AudioError(f"{name}: cannot access the file ({exc.strerror or first_line(exc)})") from None


def _open(path: Path, name: str) -> sf.SoundFile | _FfmpegFile:
    """The file opened by libsndfile, else (the [av] extra installed) by FFmpeg."""
    _check_path(path, name)
    try:
        return sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        reason = first_line(exc)
    av = _av()
    if av is not None:
        try:
            return _FfmpegFile(av, path, name)
        except _NotMedia as not_media:
            if path.suffix.lower().lstrip(".") in _FFMPEG_SUFFIXES and not_media.args:
                reason = not_media.args[0]  # FFmpeg's word on an .m4a counts more than libsndfile's
        hint = ""
    else:
        hint = f"; M4A, MP4, AAC, WebM need the [av] extra: {AV_EXTRA}"
    raise AudioError(f"{name}: not a readable audio file (formats: {formats_label(5)}): {reason}{hint}")


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header information of an audio file (cheap: nothing is decoded)."""
    name = os.fspath(path)
    with _open(Path(path), name) as fh:
        if isinstance(fh, _FfmpegFile):
            return AudioInfo(fh.declared_frames(), fh.rate, fh.channels)
        return AudioInfo(int(fh.frames), int(fh.samplerate), int(fh.channels))


class _NotMedia(Exception):
    """FFmpeg found no format it knows in the file (args: FFmpeg's reason, if any)."""


_FFMPEG_SUFFIXES = frozenset(ext for exts in FFMPEG_EXTENSIONS.values() for ext in exts)


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's cause without PyAV's errno and file name decoration."""
    return str(getattr(exc, "strerror", None) or first_line(exc))


class _FfmpegFile:
    """A file opened by FFmpeg (PyAV): its first audio stream decoded as (n, C) float32 frames,
    a codec frame at a time. Only that stream's packets are decoded (the video of an mp4 is not)."""

    def __init__(self, av: Any, path: Path, name: str) -> None:
        self._av = av
        try:
            self._container = av.open(os.fspath(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError, ValueError, UnicodeError) as exc:
            raise _NotMedia(_ffmpeg_reason(exc)) from None
        streams = self._container.streams.audio
        if not streams:
            kind = self._container.format.name.split(",")[0]
            self._container.close()
            if kind == "tty":  # FFmpeg's fallback for text: no media at all
                raise _NotMedia
            raise AudioError(f"{name}: no audio stream in this {kind} file")
        self._stream = streams[0]
        self.name = name
        codec = self._stream.codec_context  # None when FFmpeg found no decoder for a damaged header
        if codec is None:
            self._container.close()
            raise AudioError(f"{name}: its audio stream has no decoder (damaged header or unsupported codec)")
        self.rate = int(codec.sample_rate or 0)
        self.channels = int(codec.channels or 0)
        if not 1 <= self.channels <= _MAX_CHANNELS:
            self._container.close()
            raise AudioError(f"{name}: {self.channels} audio channels (at most {_MAX_CHANNELS} are supported)")

    def __enter__(self) -> _FfmpegFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def declared_frames(self) -> int:
        """Samples per channel the container declares (0 when it does not say)."""
        stream, seconds = self._stream, 0.0
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            seconds = self._container.duration / 1_000_000  # AV_TIME_BASE
        return max(0, round(seconds * self.rate))

    def frames(self) -> Iterator[np.ndarray]:
        """(n, C) float32 frames in stream order; FFmpeg's errors as AudioError (the caller keeps what
        was decoded before one)."""
        av = self._av
        resampler = av.AudioResampler(format="flt", layout=self._stream.codec_context.layout, rate=self.rate)
        try:
            for packet in self._container.demux(self._stream):  # the last (empty) packet flushes the decoder
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        yield out.to_ndarray().reshape(-1, self.channels)  # (1, n * C) packed -> (n, C)
            for out in resampler.resample(None):  # what the resampler still holds
                yield out.to_ndarray().reshape(-1, self.channels)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise AudioError(_ffmpeg_reason(exc)) from None


def _frames_first(samples: np.ndarray, name: str) -> np.ndarray:
    """Validate a PCM array and return it as (N,) or (N, C) (a view, never a copy)."""
    arr = np.asarray(samples)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise AudioError(f"{name}: unsupported sample type {arr.dtype} (expected integer or float PCM)")
    if arr.ndim == 2:
        if arr.shape[1] > _MAX_CHANNELS and arr.shape[0] <= _MAX_CHANNELS:
            arr = arr.T  # (C, N) -> (N, C)
        elif arr.shape[1] > _MAX_CHANNELS:
            raise AudioError(f"{name}: cannot tell samples from channels in shape {arr.shape}")
        if arr.shape[1] == 0:
            raise AudioError(f"{name}: no channels in shape {arr.shape}")
    elif arr.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D (samples) or 2-D (samples, channels) array, got shape {arr.shape}")
    return arr


def _mono_float(arr: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) integer/float PCM -> (N,) float32; integers scaled by their dtype's range."""
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        half = float(-int(info.min)) if info.min < 0 else (int(info.max) + 1) / 2  # full scale
        offset = 0.0 if info.min < 0 else half  # unsigned PCM is centred on its midpoint
        arr = (arr.astype(np.float32) - np.float32(offset)) * np.float32(1.0 / half)
    # Samples beyond float32 range become inf and are refused by check_samples: no numpy
    # warning on stderr. The channel mean accumulates in float64 so that finite samples near
    # the float32 limit do not overflow into a false "infinite samples" error.
    with np.errstate(over="ignore", invalid="ignore"):
        if arr.ndim == 2:
            arr = arr.mean(axis=1, dtype=np.float64) if arr.shape[1] > 1 else arr[:, 0]
        return np.ascontiguousarray(arr, dtype=np.float32)


def to_float_mono(samples: np.ndarray, name: str = ARRAY_NAME) -> np.ndarray:
    """PCM samples -> (N,) float32 mono.

    ``samples`` is (N,) or (N, C) (soundfile layout; (C, N) is accepted when C is clearly the
    channel axis). Integer PCM is scaled by its dtype's range to [-1, 1); float is kept as is.
    """
    return _mono_float(_frames_first(samples, name))


class Resampler:
    """Streaming soxr resampler (identical output to one-shot ``soxr.resample``)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)


def check_samples(block: np.ndarray, name: str, offset: int, rate: int) -> None:
    """Refuse NaN/Inf samples and amplitudes that would overflow the float32 features."""
    if not block.size:
        return
    peak = float(np.max(np.abs(block)))  # NaN when any sample is NaN
    if not np.isfinite(peak):
        at = (offset + int(np.flatnonzero(~np.isfinite(block))[0])) / rate
        raise AudioError(f"{name}: contains NaN or infinite samples (first at {at:.3f} s)")
    if peak > MAX_AMPLITUDE:
        raise AudioError(f"{name}: sample amplitude {peak:.3g} is far outside [-1, 1] "
                         "(float audio must be scaled to [-1, 1])")


MIN_SAMPLE_RATE = 4000  # Hz; below this no speech band survives (a damaged header, usually)
MAX_SAMPLE_RATE = 768_000  # Hz; the highest rate of any real audio hardware


def check_rate(sample_rate: object, name: str, what: str) -> int:
    """``sample_rate`` as an int, or an AudioError naming ``name`` and ``what`` (not a positive integer,
    or outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{name}: {what} must be a positive integer (Hz), got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: {what} {int(sample_rate)} Hz is outside the supported "
                         f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    return int(sample_rate)


def _file_blocks(path: Path, name: str, sample_rate: int | None, block_seconds: float
                 ) -> tuple[int, Iterator[np.ndarray]]:
    fh = _open(path, name)
    try:
        rate = check_rate(fh.rate if isinstance(fh, _FfmpegFile) else int(fh.samplerate), name, "sample rate")
    except AudioError:
        fh.close()
        raise
    if sample_rate is not None and sample_rate != rate:
        fh.close()
        raise AudioError(f"{name}: file is {rate} Hz but sample_rate={sample_rate} was given")
    block_frames = max(1, int(block_seconds * rate))
    if isinstance(fh, _FfmpegFile):
        return rate, _ffmpeg_blocks(fh, rate, block_frames)

    def blocks() -> Iterator[np.ndarray]:
        read = 0  # frames decoded so far
        with fh:
            while True:
                try:
                    data = fh.read(block_frames, dtype="float32", always_2d=True)  # (n, C)
                except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
                    rest, failed = _salvage(fh, read, block_frames)  # the block failed as a whole: read its
                    if read + rest.shape[0] == 0:                         # good start in small steps
                        raise AudioError(f"{name}: corrupt or truncated audio: {first_line(exc)}") from None
                    if rest.shape[0]:
                        read += rest.shape[0]
                        yield _mono_float(rest)
                    if not failed and rest.shape[0]:
                        continue
                    _warn_partial(name, f"damaged or truncated after {read / rate:.2f} s ({first_line(exc)})",
                                  read, rate)
                    return
                if data.shape[0] == 0:
                    declared = _declared_frames(fh)
                    if declared > read + _TRUNCATION_SLACK * rate:
                        _warn_partial(name, f"truncated: the header declares {declared / rate:.2f} s", read, rate)
                    return
                read += data.shape[0]
                yield _mono_float(data)

    return rate, blocks()


def _ffmpeg_blocks(fh: _FfmpegFile, rate: int, block_frames: int) -> Iterator[np.ndarray]:
    """(n,) float32 mono blocks of about ``block_frames`` from FFmpeg's frames; a decoding error
    after some audio, or less audio than the container declares, is a warning (what decoded is kept)."""
    pending: list[np.ndarray] = []  # (n, C) frames not yet yielded
    held = read = 0
    with fh:
        frames = fh.frames()
        while True:
            try:
                frame = next(frames, None)
            except AudioError as exc:
                if read + held == 0:
                    raise AudioError(f"{fh.name}: corrupt or truncated audio: {exc}") from None
                if pending:
                    yield _mono_float(np.concatenate(pending))
                _warn_partial(fh.name, f"damaged or truncated after {(read + held) / rate:.2f} s ({exc})",
                              read + held, rate)
                return
            if frame is not None:
                pending.append(frame)
                held += frame.shape[0]
            if pending and (frame is None or held >= block_frames):
                yield _mono_float(np.concatenate(pending))
                read, held, pending = read + held, 0, []
            if frame is None:
                break
        declared = fh.declared_frames()  # compressed streams: an estimate, hence the wider slack
    if declared > read * (1 + _FFMPEG_SLACK) + _TRUNCATION_SLACK * rate:
        _warn_partial(fh.name, f"truncated: the file declares {declared / rate:.2f} s", read, rate)


_FFMPEG_SLACK = 0.05  # fraction of the audio: FFmpeg's durations of compressed streams are estimates
_TRUNCATION_SLACK = 0.1  # seconds; frame counts of compressed formats (mp3) are estimates
_UNKNOWN_SIZE = 0x7FFF0000  # data sizes from here up are "unknown length" placeholders (ffmpeg, sox)
_WAV_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


_SALVAGE_FRAMES = 4096  # step of re-reading a block that failed


def _salvage(fh: sf.SoundFile, start: int, frames: int) -> tuple[np.ndarray, bool]:
    """Re-read up to ``frames`` frames from ``start`` in small steps after a block read failed
    (libsndfile returns nothing of a block that fails part way): ((n, C) float32 frames that
    decoded, whether a step failed again)."""
    parts: list[np.ndarray] = []
    got = 0
    try:
        if not fh.seekable():
            return np.zeros((0, fh.channels), np.float32), True
        fh.seek(start)
        while got < frames:
            part = fh.read(min(_SALVAGE_FRAMES, frames - got), dtype="float32", always_2d=True)  # (n, C)
            if part.shape[0] == 0:
                break
            parts.append(part)
            got += part.shape[0]
        failed = False
    except (sf.SoundFileError, RuntimeError, OSError, ValueError):
        failed = True
    return (np.concatenate(parts) if parts else np.zeros((0, fh.channels), np.float32)), failed


def _declared_frames(fh: sf.SoundFile) -> int:
    """Frames the header declares. libsndfile shortens ``frames`` of a truncated WAV to what the
    file holds and notes the header's data size in its log (``data : N (should be M)``)."""
    frames = int(fh.frames)
    try:
        match = _WAV_DATA.search(fh.extra_info)
    except (RuntimeError, sf.SoundFileError):
        return frames
    # A writer that could not seek back (a pipe) leaves a placeholder size: not a truncation.
    if match and 0 < int(match[2]) and int(match[1]) < _UNKNOWN_SIZE:
        frames = max(frames, round(frames * int(match[1]) / int(match[2])))
    return frames


def _warn_partial(name: str, what: str, read: int, rate: int) -> None:
    warnings.warn(AudioWarning(f"{name}: {what}; transcribing the {read / rate:.2f} s that could be read"),
                  stacklevel=1)


def stream_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    target_rate: int = 16000,
    *,
    min_samples: int | None = None,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Yield (n,) float32 mono blocks at ``target_rate``; files are decoded block by block.

    ``sample_rate`` is required for arrays (and, for files, must match the header if given).
    At the end of the stream the total is checked: empty audio, or fewer than ``min_samples``
    samples (default: what the default feature config needs at ``target_rate``), raise
    :class:`AudioError`. Errors are raised lazily, by the iteration that meets them, except
    that a missing or unopenable file fails at once.
    """
    name = describe(source)
    target = check_rate(target_rate, name, "target_rate")
    if min_samples is None:
        min_samples = _default_min_samples(target)
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError(f"{name}: sample_rate is required for numpy input")
        rate = check_rate(sample_rate, name, "sample_rate")
        frames = _frames_first(source, name)  # converted block by block: no full-length copy
        step = max(1, int(block_seconds * rate))
        blocks: Iterator[np.ndarray] = (_mono_float(frames[i:i + step]) for i in range(0, frames.shape[0], step))
    elif isinstance(source, (str, os.PathLike)):
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate, name, "sample_rate")
        rate, blocks = _file_blocks(Path(source), name, sample_rate, block_seconds)
    else:
        raise AudioError(f"{name}: expected a file path or a numpy array of samples")
    return _resampled(blocks, name, rate, target, min_samples)


def _resampled(blocks: Iterator[np.ndarray], name: str, rate: int, target: int, min_samples: int
               ) -> Iterator[np.ndarray]:
    resample = Resampler(rate, target)
    seen_in = 0  # input samples (for error positions)
    total = 0  # output samples
    for block in blocks:
        check_samples(block, name, seen_in, rate)
        seen_in += block.shape[0]
        out = resample(block)
        total += out.shape[0]
        if out.shape[0]:
            yield out
    if seen_in:
        tail = resample(np.zeros(0, dtype=np.float32), last=True)
        total += tail.shape[0]
        if tail.shape[0]:
            yield tail
    if seen_in == 0:
        raise AudioError(f"{name}: empty audio (no samples)")
    if total < min_samples:
        raise AudioError(f"{name}: too short ({total / target:.3f} s); the model needs at least "
                         f"{min_samples / target:.3f} s ({min_samples} samples at {target} Hz)")


def _default_min_samples(target_rate: int) -> int:
    cfg = FeatureConfig()
    return -(-cfg.min_samples * target_rate // cfg.sample_rate)  # ceil, scaled to the target rate


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    target_rate: int = 16000,
    *,
    min_samples: int | None = None,
) -> np.ndarray:
    """The whole input as (N,) float32 mono at ``target_rate`` (see :func:`stream_audio`)."""
    blocks = list(stream_audio(source, sample_rate, target_rate, min_samples=min_samples))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
