"""Live transcription: audio chunks in, one :class:`Utterance` per spoken utterance out.

A voice activity detector (:mod:`.vad`) decides frame by frame whether there is speech. An
utterance opens at the first speech frame (less ``padding``) and ends once ``min_silence`` of
non-speech follows its last speech frame (plus ``padding``); bursts shorter than ``min_speech``
are dropped as false starts, and speech longer than ``max_utterance`` is cut at the quietest
20 ms of the window before the limit, as long files are. Each utterance is then transcribed by
the :class:`~i3d_edge.runtime.Runtime` on its own, so it chooses its own depth.

Chunks may have any length (one sample to minutes) and are float or integer PCM at the stream's
rate. Decisions depend only on the samples, never on how they were chunked: the VAD sees the
same fixed frames whatever the chunk sizes.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

import numpy as np

from ..audio import _check_samples, _rate, _Resampler, to_float_mono
from ..config import FeatureConfig
from ..errors import AudioError
from .results import Segment, Transcript
from .segment import find_cut
from .stream_settings import StreamSettings
from .vad import VAD_RATE, Vad, make_vad


class Transcriber(Protocol):
    """What a stream needs of its :class:`~i3d_edge.runtime.Runtime` (named structurally, so this
    module does not import the runtime that creates streams)."""

    @property
    def feature_config(self) -> FeatureConfig: ...

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript: ...

__all__ = ["Segmenter", "Span", "Stream", "StreamSettings", "Utterance"]

PIECE = 4096  # model-rate samples the VAD takes at a time from a long chunk
CUT_FRAME_SECONDS = 0.02  # energy frames searched for the quietest point of an over-long utterance


@dataclass(frozen=True)
class Span:
    """An utterance found by the :class:`Segmenter`, in samples of the model rate."""

    start: int  # first sample (absolute, from the start of the stream)
    end: int  # one past the last sample
    decided: float  # perf_counter() when the VAD ended it (end of speech, or a cut)
    audio: np.ndarray = dataclasses.field(repr=False)  # (end - start,) float32 samples [start, end)


@dataclass(frozen=True)
class Utterance:
    """One utterance of a live stream and its transcript.

    The transcript's token and segment times are seconds from the start of the stream.
    """

    transcript: Transcript
    start: float  # seconds from the start of the stream (padding included)
    end: float  # seconds
    ready: float  # wall-clock time (time.time()) when the result was ready
    latency: float  # seconds from the VAD's end-of-speech decision to the result

    @property
    def text(self) -> str:
        return self.transcript.text

    @property
    def modules_executed(self) -> int:
        return self.transcript.modules_executed

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of ``i3d-edge listen --format json``."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "modules_executed": self.modules_executed, "modules_total": self.transcript.modules_total,
                "executed_modules": list(self.transcript.executed_modules),
                "latency_ms": round(self.latency * 1000.0, 1)}


class _Samples:
    """Samples [base, end) of a stream, appended in blocks and dropped from the front, in one
    growing float32 array (no per-append concatenation: one-sample chunks stay cheap)."""

    def __init__(self) -> None:
        self._data = np.zeros(1 << 14, dtype=np.float32)
        self._lo = 0  # index in _data of sample `base`
        self._hi = 0  # index in _data one past the last sample
        self.base = 0  # absolute index of the first sample held

    @property
    def end(self) -> int:
        return self.base + self._hi - self._lo

    def append(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if self._hi + n > self._data.shape[0]:
            held = self._hi - self._lo
            if held + n > self._data.shape[0] // 2:  # grow (x2 at least) ...
                data = np.zeros(max(2 * self._data.shape[0], 2 * (held + n)), dtype=np.float32)
            else:  # ... or just move what is held to the front
                data = self._data
            data[:held] = self._data[self._lo: self._hi]
            self._data, self._lo, self._hi = data, 0, held
        self._data[self._hi: self._hi + n] = block
        self._hi += n

    def view(self, lo: int, hi: int) -> np.ndarray:
        """Samples [lo, hi) (absolute indices, within [base, end)); a view, valid until the next append."""
        return self._data[self._lo + lo - self.base: self._lo + hi - self.base]

    def drop_before(self, index: int) -> None:
        k = min(index, self.end) - self.base
        if k > 0:
            self._lo += k
            self.base += k


class Segmenter:
    """The VAD and end-pointing of a stream: float32 samples at ``rate`` in, utterance spans out.

    It keeps only the open utterance (at most ``max_utterance``) plus ``padding`` and one VAD frame.
    """

    def __init__(self, settings: StreamSettings, rate: int, vad: Vad | None = None) -> None:
        self.settings = settings
        self.rate = rate
        self.vad = vad if vad is not None else make_vad(settings.vad)
        self._to_vad = _Resampler(rate, VAD_RATE)
        self._per_vad = rate / VAD_RATE  # model samples per VAD sample
        self._audio = _Samples()  # model-rate samples
        self._pending = _Samples()  # VAD-rate samples not yet in a full frame
        self._frames = 0  # VAD frames decided
        self._pad = round(settings.padding * rate)
        self._silence = round(settings.min_silence * rate)
        self._min_speech = round(settings.min_speech * rate)
        self._max = round(settings.max_utterance * rate)
        self._search = max(1, round(settings.max_utterance * rate / 6))
        self._cut_frame = max(1, round(CUT_FRAME_SECONDS * rate))
        self._open: int | None = None  # start of the open utterance (padding included)
        self._speech_start = 0  # first speech sample of the open utterance
        self._speech_end = 0  # one past its last speech frame
        self._prev_end = 0  # end of the last utterance emitted (utterances never overlap)
        self._continued = False  # the open utterance continues one cut at max_utterance (never a false start)

    @property
    def samples(self) -> int:
        """Samples received so far."""
        return self._audio.end

    @property
    def open_span(self) -> tuple[int, int] | None:
        """(start, samples so far) of the utterance in progress, or None between utterances."""
        return None if self._open is None else (self._open, self._audio.end)

    def audio(self, start: int, end: int) -> np.ndarray:
        """A copy of samples [start, end) of the open utterance."""
        return self._audio.view(start, end).copy()

    def push(self, block: np.ndarray) -> list[Span]:
        """Take (n,) float32 samples at ``rate``; return the utterances they complete."""
        self._audio.append(block)
        return self._decide(self._to_vad(block))

    def finish(self) -> list[Span]:
        """End of the stream: decide the last partial frame and close the open utterance."""
        spans = self._decide(self._to_vad(np.zeros(0, dtype=np.float32), last=True))
        left = self._pending.end - self._pending.base
        if left:  # the last partial frame, zero-padded
            frame = np.zeros(self.vad.frame, dtype=np.float32)
            frame[:left] = self._pending.view(self._pending.base, self._pending.end)
            spans += self._step(self.vad(frame), self._audio.end)
        if self._open is not None:
            spans += self._close(self._audio.end, perf_counter())
        return spans

    # ------------------------------------------------------------------ internals
    def _decide(self, vad_block: np.ndarray) -> list[Span]:
        spans: list[Span] = []
        self._pending.append(vad_block)
        size = self.vad.frame
        while self._pending.end - self._pending.base >= size:
            frame = self._pending.view(self._pending.base, self._pending.base + size)
            probability = self.vad(frame)
            self._pending.drop_before(self._pending.base + size)
            self._frames += 1
            spans += self._step(probability, min(self._audio.end, round(self._frames * size * self._per_vad)))
        # keep the open utterance, or between utterances the padding before the next VAD frame
        keep = self._open if self._open is not None else round(self._frames * size * self._per_vad) - self._pad
        self._audio.drop_before(keep)
        return spans

    def _step(self, probability: float, frame_end: int) -> list[Span]:
        """One VAD frame ending at model sample ``frame_end``."""
        now = perf_counter()
        frame_start = max(0, frame_end - round(self.vad.frame * self._per_vad))
        threshold = self.settings.threshold
        if self._open is None:
            if probability < threshold:
                return []
            self._open = max(frame_start - self._pad, self._prev_end, self._audio.base)
            self._speech_start, self._speech_end = frame_start, frame_end
            self._continued = False
            return []
        if probability >= max(0.01, threshold - 0.15):
            self._speech_end = frame_end
        elif frame_end - self._speech_end >= self._silence:
            return self._close(min(self._speech_end + self._pad, frame_end), now)
        if frame_end - self._open >= self._max:  # too long: cut at the quietest point before the limit
            lo = self._open + self._max - self._search
            cut = find_cut(self._audio.view(self._audio.base, self._audio.end), lo - self._audio.base,
                           lo - self._audio.base + self._search, self._cut_frame) + self._audio.base
            span = Span(self._open, cut, now, self.audio(self._open, cut))
            self._prev_end = self._open = cut
            self._continued = True
            return [span]
        return []

    def _close(self, end: int, now: float) -> list[Span]:
        assert self._open is not None
        start, self._open = self._open, None
        if end <= start or (self._speech_end - self._speech_start < self._min_speech and not self._continued):
            return []  # a false start: dropped
        self._prev_end = end
        return [Span(start, end, now, self.audio(start, end))]


def _shifted(transcript: Transcript, offset: float) -> Transcript:
    """The transcript of an utterance with its times moved by ``offset`` seconds (into the stream)."""
    tokens = tuple(t.shifted(offset) for t in transcript.tokens)
    segments = tuple(Segment(s.start + offset, s.end + offset, s.text, s.gate_probs, s.executed_modules)
                     for s in transcript.segments)
    return dataclasses.replace(transcript, tokens=tokens, segments=segments)


class Stream:
    """A live transcription stream of one :class:`Runtime` (see :meth:`Runtime.stream`).

    ``feed`` and ``flush`` may be called from any thread, one call at a time (a lock serialises
    them); in an audio callback, put copies of the chunks on a ``queue.Queue`` and feed them from
    a worker thread, so the callback never waits for a transcription.
    """

    def __init__(self, runtime: Transcriber, sample_rate: int = 16000, settings: StreamSettings | None = None, *,
                 name: str = "audio stream", vad: Vad | None = None) -> None:
        self.name = name
        self.sample_rate = _rate(sample_rate, name, "sample_rate")
        self.settings = settings or StreamSettings()
        self._runtime = runtime
        self._model_rate = runtime.feature_config.sample_rate
        self._min_samples = runtime.feature_config.min_samples
        self._resample = _Resampler(self.sample_rate, self._model_rate)
        self._segmenter = Segmenter(self.settings, self._model_rate, vad)
        self._received = 0  # input samples fed
        self._lock = threading.Lock()
        self._closed = False

    @property
    def seconds(self) -> float:
        """Seconds of audio fed so far."""
        return self._received / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, samples: Any) -> list[Utterance]:
        """Take a chunk of any length: (n,) or (n, channels) int16 or float samples in [-1, 1] at
        ``sample_rate``. Returns the utterances it completed, transcribed, in order."""
        with self._lock:
            self._check_open()
            arr = np.asarray(samples)
            if arr.size == 0 and arr.ndim <= 2:
                return []
            block = to_float_mono(arr, self.name)
            _check_samples(block, self.name, self._received, self.sample_rate)
            self._received += block.shape[0]
            block = self._resample(block)
            utterances = []
            for i in range(0, block.shape[0], PIECE):  # long chunks in pieces: each utterance is
                utterances += self._transcribe(self._segmenter.push(block[i: i + PIECE]))  # transcribed once ended
            return utterances

    def flush(self) -> list[Utterance]:
        """End the stream: return the utterance in progress (if it is speech), transcribed. Later
        calls to ``feed`` are an error."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            spans = self._segmenter.push(self._resample(np.zeros(0, dtype=np.float32), last=True))
            return self._transcribe(spans + self._segmenter.finish())

    def partial(self) -> Transcript | None:
        """The utterance in progress transcribed as it stands (times in stream seconds), or None
        between utterances. Costs one transcription: call it every few hundred ms at most."""
        with self._lock:
            span = None if self._closed else self._segmenter.open_span
            if span is None or span[1] - span[0] < self._min_samples:
                return None
            audio = self._segmenter.audio(*span)
            return _shifted(self._runtime.transcribe(audio, self._model_rate), span[0] / self._model_rate)

    def close(self) -> None:
        """End the stream without transcribing what is left (``flush`` first to keep it)."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise AudioError(f"{self.name}: the stream has ended (flush() or close() was called)")

    def _transcribe(self, spans: list[Span]) -> list[Utterance]:
        utterances = []
        rate = self._model_rate
        for span in spans:
            if span.end - span.start < self._min_samples:
                continue
            transcript = self._runtime.transcribe(span.audio, rate)
            done = perf_counter()
            utterances.append(Utterance(_shifted(transcript, span.start / rate), span.start / rate, span.end / rate,
                                        time.time(), done - span.decided))
        return utterances
