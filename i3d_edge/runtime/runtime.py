"""``Runtime``: load a bundle once, then transcribe files and arrays with input-dependent depth."""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np

from ..audio import AudioSource, describe, stream_audio
from ..config import FeatureConfig
from ..errors import AudioError, BundleError, ConfigError
from ..features import batch_features, extract_features, num_frames
from ..manifest import Manifest, load_manifest
from .decoding import make_decoder, resolve_decoder, span_confidences
from .encoder import Encoder
from .lm_probe import LmSlot
from .options import RuntimeChanges, RuntimeKnobs, RuntimeOptions
from .results import STAGES, ForwardOutput, Segment, TokenTiming, Transcript
from .segment import SegmentPolicy, split_stream
from .sessions import SessionPool

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11; annotations only

    from .stream import Stream
    from .stream_settings import StreamKnobs

__all__ = ["DEFAULT_BUNDLE", "ItemResult", "Runtime"]

DEFAULT_BUNDLE = Path(__file__).resolve().parent.parent / "assets" / "default"  # embedded model (package data)

Progress = Callable[[float], None]  # called with the seconds of audio just processed
Forward = Callable[[np.ndarray, np.ndarray], ForwardOutput]  # features (B, T, F), lens (B,) -> outputs


@dataclass(frozen=True)
class ItemResult:
    """The outcome for one input of :meth:`Runtime.iter_transcripts`: a transcript or an error."""

    index: int  # position in the input sequence
    name: str  # the path as given, or "audio array"
    transcript: Transcript | None  # None when the input failed
    error: AudioError | None  # why it failed (unreadable, empty, too short, NaN/Inf ...)

    def unwrap(self) -> Transcript:
        """The transcript, or raise the input's error."""
        if self.transcript is None:
            raise self.error or AudioError(f"{self.name}: no transcript")
        return self.transcript


@dataclass
class _Job:
    """Mutable bookkeeping for one input while its segments travel through batches."""

    index: int
    name: str
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    pieces: list[_Piece | None] = field(default_factory=list)  # decoded segments, in order
    samples: int = 0  # samples read so far (at the model rate)
    pending: int = 0  # segments queued but not yet decoded
    done: bool = False  # the input has been read to its end (or failed)
    error: AudioError | None = None


@dataclass(frozen=True)
class _Piece:
    """A decoded segment before it is merged into its Transcript."""

    segment: Segment
    tokens: tuple[TokenTiming, ...]
    probs: np.ndarray  # (2N,) float32
    gates: np.ndarray  # (2N,) bool


@dataclass(frozen=True)
class _Queued:
    """A segment's features waiting for a batch."""

    job: _Job
    slot: int  # index into job.pieces
    start: int  # first sample of the segment in the whole input
    samples: int  # segment length (samples)
    features: np.ndarray  # (T, F) float32 normalised log-mel, or (N, 1) samples (waveform frontend)


def _bundle_dir(model: str | os.PathLike[str] | None) -> Path:
    if model is not None:
        return Path(model)
    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        raise BundleError("no default model is embedded in this i3d-edge install; "
                          "pass a bundle directory (Runtime('path/to/bundle') or --model DIR)")
    return DEFAULT_BUNDLE


class Runtime:
    """A loaded bundle: sessions created once, shared safely between threads.

    >>> rt = Runtime("bundle/", threshold=0.5)          # doctest: +SKIP
    >>> rt.transcribe("clip.wav").text                   # doctest: +SKIP
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, options: RuntimeOptions | None = None,
                 **knobs: Unpack[RuntimeKnobs]) -> None:
        """Load the bundle at ``model`` (default: the embedded model). ``knobs`` (:class:`RuntimeKnobs`) are
        :class:`RuntimeOptions` fields, applied over ``options``; an unknown name is a ConfigError."""
        options = RuntimeOptions.build(**knobs) if options is None else options.replace(**knobs)
        manifest = load_manifest(_bundle_dir(model))
        variant = manifest.variant(options.precision)
        always = ["frontend", "head", *(k for k in variant.graphs if k == "gate" or k.endswith(".gate"))]
        pool = SessionPool(manifest, variant, threads=options.threads, providers=options.providers,
                           eager=always, lazy=options.lazy)
        self._setup(manifest, pool, options, LmSlot(manifest))

    def _setup(self, manifest: Manifest, pool: SessionPool, options: RuntimeOptions, lm: LmSlot,
               forward: Forward | None = None) -> None:
        self._manifest = manifest
        self._pool = pool
        self._options = options
        self._encoder = Encoder(manifest, pool, options)
        self._forward_override = forward  # with_encoder's forward, kept by with_options clones
        self._lm = lm  # the bundle's language model, loaded at the first LM decode, shared by clones
        self._decoder_kind = resolve_decoder(options.decoder, manifest.decoder)
        self._decode_spans = make_decoder(self._decoder_kind, lm, lm_weight=options.lm_weight,
                                          word_score=options.word_score, beam_size=options.beam_size)
        fc = manifest.feature_config
        if options.edge_silence is not None:  # the knob overrides the bundle's
            fc = replace(fc, edge_silence=options.edge_silence)
        self._feature_config = fc
        self._frame_seconds = fc.encoder_frame_seconds  # one encoder frame
        self._edge_seconds = fc.edge_silence  # silence the features add before each segment
        self._policy = SegmentPolicy(max_seconds=options.segment_seconds, search_seconds=options.segment_seconds / 6)
        # Attention memory grows with rows x frames^2: a batch may need no more than one segment of
        # the maximum length (measured, 10-min file, 12 layers d_model 192: peak RSS 493 MB with
        # 8 x 30 s per batch, 191 MB with one, and no slower; 10 s clips still go 8 at a time).
        # Frames are encoder frames, from the model's own input-length formula: one per 4 log-mel
        # frames, or per conv stride of samples (320 for wav2vec2) for a waveform frontend.
        self._encoder_frames = manifest.model_config.encoder_lengths  # input rows -> encoder frames
        longest = int(self._encoder_frames(num_frames(int(options.segment_seconds * fc.sample_rate), fc)))
        self._batch_budget = longest ** 2  # rows x encoder frames^2
        # A waveform frontend's conv activations grow with rows x samples (512 channels at a fifth
        # of the sample rate for wav2vec2; measured, wav2vec2-base, fp32: peak RSS 2.75 GB for 8 x
        # 10 s clips in one batch, 1.49 GB for a 10-min file in 30 s segments), so its batches
        # also hold no more frames (rows x encoder frames) than one segment of the maximum length.
        self._frame_budget = longest if manifest.model_config.waveform is not None else None

    def with_options(self, **changes: Unpack[RuntimeChanges]) -> Runtime:
        """A Runtime sharing these sessions (and the loaded LM) with other knobs (threshold,
        max_modules, full_depth, segment_seconds, batch_size, decoder and its LM settings);
        thread, provider, precision and lazy changes need a new Runtime."""
        fixed = set(changes) & (RuntimeKnobs.__optional_keys__ - RuntimeChanges.__optional_keys__)
        if fixed:
            raise ConfigError(f"{', '.join(sorted(fixed))} cannot change on a loaded Runtime; create a new one")
        return self._clone(self._options.replace(**changes), self._forward_override)

    def with_encoder(self, forward: Forward) -> Runtime:
        """A Runtime sharing these sessions whose encoder forward is ``forward`` (features (B, T, F),
        features_lens (B,) -> ForwardOutput): reading, cutting, batching and decoding stay this
        Runtime's. For baselines run through the very same pipeline (a monolithic graph, PyTorch)."""
        return self._clone(self._options, forward)

    def _clone(self, options: RuntimeOptions, forward: Forward | None) -> Runtime:
        clone = object.__new__(Runtime)
        clone._setup(self._manifest, self._pool, options, self._lm, forward)
        return clone

    # ------------------------------------------------------------------ introspection
    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def options(self) -> RuntimeOptions:
        return self._options

    @property
    def feature_config(self) -> FeatureConfig:
        """The bundle's feature config, with the ``edge_silence`` knob when it is set."""
        return self._feature_config

    @property
    def decoder(self) -> str:
        """The decoder in effect: ``lm`` (word n-gram beam search) or ``greedy``."""
        return self._decoder_kind

    @property
    def module_names(self) -> tuple[str, ...]:
        """Gated modules in execution order (the columns of ``gate_probs`` / ``gates``)."""
        return self._manifest.modules

    @property
    def modules_total(self) -> int:
        """Number of gated modules (2N)."""
        return len(self._manifest.modules)

    @property
    def threshold(self) -> float:
        """The gate threshold in effect (the option, or the bundle's default)."""
        return self._encoder.threshold

    @property
    def session_runs(self) -> Counter[str]:
        """Graph key -> number of session runs so far (shared by Runtimes from ``with_options``)."""
        return self._pool.runs

    @property
    def sessions_created(self) -> Counter[str]:
        """Graph key -> sessions created for it (1 for each loaded graph, also when threads race a
        lazy creation)."""
        return self._pool.created

    @property
    def language_model_loaded(self) -> bool:
        """Whether the bundle's language model is loaded (at the first LM decode; shared by clones)."""
        return self._lm.loaded

    @property
    def loaded_sessions(self) -> tuple[str, ...]:
        """Graph keys whose sessions exist (with ``lazy``, only the modules used so far)."""
        return self._pool.loaded

    def __repr__(self) -> str:
        o = self._options
        return (f"Runtime({str(self._manifest.root)!r}, predictor={self._manifest.predictor}, "
                f"variant={self._pool.variant.name}, threshold={self.threshold}, max_modules={o.max_modules}, "
                f"full_depth={o.full_depth})")

    # ------------------------------------------------------------------ inference
    def forward(self, features: np.ndarray, features_lens: np.ndarray) -> ForwardOutput:
        """Encoder forward on a padded batch: features (B, T, F) float32, already normalised
        (``features.normalize``), features_lens (B,) int64 -> log-probs, lengths, gate
        probabilities and the gates applied."""
        return (self._forward_override or self._encoder.forward)(features, features_lens)

    def decode(self, log_probs: np.ndarray, length: int | None = None) -> tuple[str, tuple[TokenTiming, ...]]:
        """Decode one row of :meth:`forward`'s log-probs, (T, V) of which the first ``length`` frames
        count, with this Runtime's decoder (greedy or the bundle's LM with these settings): the text
        and its tokens, timed in seconds from the row's first frame, with their confidences."""
        n = log_probs.shape[0] if length is None else int(length)
        spans = self._decode_spans(log_probs, n)
        table, fs = self._manifest.tokens, self._frame_seconds
        confidences = span_confidences(log_probs, spans).tolist()  # (S,)
        tokens = tuple(TokenTiming(table.tokens[s.id], s.start * fs, s.end * fs, c)
                       for s, c in zip(spans, confidences, strict=True))
        return table.decode(s.id for s in spans), tokens

    def transcribe(self, audio: AudioSource, sample_rate: int | None = None) -> Transcript:
        """Transcribe a file path (wav, flac, ogg) or a numpy array (``sample_rate`` required)."""
        return self.transcribe_batch([audio], sample_rate)[0]

    def transcribe_batch(self, items: Iterable[AudioSource], sample_rate: int | None = None, *,
                         batch_size: int | None = None) -> list[Transcript]:
        """Transcribe several inputs, their segments sharing padded batches; raises the first
        input's AudioError (use :meth:`iter_transcripts` to keep going past bad inputs)."""
        return [result.unwrap() for result in self.iter_transcripts(items, sample_rate, batch_size=batch_size)]

    def iter_transcripts(self, items: Iterable[AudioSource], sample_rate: int | None = None, *,
                         batch_size: int | None = None, progress: Progress | None = None
                         ) -> Iterator[ItemResult]:
        """Yield one ItemResult per input, in input order, as soon as it is complete.

        Inputs are streamed and cut into segments; up to ``batch_size`` segments (of any inputs)
        run through :meth:`forward` together, fewer when rows x encoder frames^2 (for a waveform
        frontend also rows x frames) would exceed that of one segment of the maximum length, so
        memory is bounded by one full segment, not by the length of the audio. A bad input yields
        its AudioError; the others go on.
        """
        size = (self._options if batch_size is None else self._options.replace(batch_size=batch_size)).batch_size
        jobs: deque[_Job] = deque()
        queue: list[_Queued] = []
        for index, source in enumerate(items):
            job = _Job(index, describe(source))
            jobs.append(job)
            segments = self._segments(source, sample_rate, job)
            while job.error is None:  # (a batch that ran out of memory fails its inputs)
                try:
                    queued = next(segments)
                except StopIteration:
                    break
                except AudioError as exc:
                    job.error = exc
                    break
                if queue and not self._fits(queue, queued):
                    self._run_batch(queue, progress)
                    queue = []
                    yield from self._finished(jobs)
                queue.append(queued)
                if len(queue) >= size:
                    self._run_batch(queue, progress)
                    queue = []
                    yield from self._finished(jobs)
            if job.error is not None:  # its segments still queued need not run
                queue = [q for q in queue if q.job is not job]
            job.done = True
            yield from self._finished(jobs)
        if queue:
            self._run_batch(queue, progress)
        yield from self._finished(jobs)

    def stream(self, sample_rate: int = 16000, **settings: Unpack[StreamKnobs]) -> Stream:
        """A live stream (a context manager): ``feed(chunk)`` returns the utterances the chunk
        completed, each transcribed with its own depth; ``flush()`` ends it. ``settings`` are
        :class:`~i3d_edge.runtime.stream.StreamSettings` fields (vad, min_silence, padding, ...)."""
        from .stream import Stream, StreamSettings

        return Stream(self, sample_rate, StreamSettings.build(**settings))

    # ------------------------------------------------------------------ pipeline steps
    def _blocks(self, source: AudioSource, sample_rate: int | None, job: _Job) -> Iterator[np.ndarray]:
        """The input's (n,) float32 blocks at the model rate; time spent counts as "load"."""
        fc = self._feature_config
        t = perf_counter()
        try:
            blocks = stream_audio(source, sample_rate, fc.sample_rate, min_samples=fc.min_samples)
        finally:
            job.timings["load"] += perf_counter() - t
        while True:
            t = perf_counter()
            try:
                block = next(blocks)
            except StopIteration:
                return
            finally:
                job.timings["load"] += perf_counter() - t
            job.samples += block.shape[0]
            yield block

    def _segments(self, source: AudioSource, sample_rate: int | None, job: _Job) -> Iterator[_Queued]:
        fc = self._feature_config
        for seg in split_stream(self._blocks(source, sample_rate, job), fc.sample_rate, self._policy):
            t = perf_counter()
            try:
                feats = extract_features(seg.audio, fc)  # (T, F)
            except MemoryError:
                raise AudioError(f"{job.name}: out of memory computing the features of a "
                                 f"{seg.audio.shape[0] / fc.sample_rate:.0f} s segment") from None
            job.timings["features"] += perf_counter() - t
            job.pieces.append(None)
            job.pending += 1
            yield _Queued(job, len(job.pieces) - 1, seg.start, seg.audio.shape[0], feats)

    def _fits(self, queue: list[_Queued], item: _Queued) -> bool:
        """Whether ``item`` may join the batch ``queue`` under the rows x encoder frames^2 budget
        (and, for a waveform frontend, the rows x encoder frames one)."""
        frames = int(self._encoder_frames(max(item.features.shape[0], *(q.features.shape[0] for q in queue))))
        rows = len(queue) + 1
        if self._frame_budget is not None and rows * frames > self._frame_budget:
            return False
        return rows * frames * frames <= self._batch_budget

    def _run_batch(self, queue: list[_Queued], progress: Progress | None) -> None:
        try:
            features, lens = batch_features([q.features for q in queue])  # (B, T, F), (B,)
            out = self.forward(features, lens)
        except MemoryError:  # this batch's inputs fail, named; the others go on
            seconds = max(q.samples for q in queue) / self._feature_config.sample_rate
            for q in queue:
                q.job.pending -= 1
                q.job.error = q.job.error or AudioError(
                    f"{q.job.name}: out of memory in the encoder (a batch of {len(queue)} segment(s) of up to "
                    f"{seconds:.0f} s; try a smaller batch size or shorter segments)")
            return
        share = lens / lens.sum()  # each row's part of the batch's shared stage time
        rate = self._feature_config.sample_rate
        for row, q in enumerate(queue):
            for stage, seconds in out.timings.items():
                q.job.timings[stage] += seconds * float(share[row])
            t = perf_counter()
            q.job.pieces[q.slot] = self._decode(out, row, q.start / rate, (q.start + q.samples) / rate)
            q.job.timings["decode"] += perf_counter() - t
            q.job.pending -= 1
        if progress is not None:
            progress(sum(q.samples for q in queue) / rate)

    def _decode(self, out: ForwardOutput, row: int, start: float, end: float) -> _Piece:
        text, local = self.decode(out.log_probs[row], int(out.lens[row]))
        # times in the whole audio: less the silence the features added before the segment, inside it
        tokens = tuple(t.shifted(start - self._edge_seconds).within(start, end) for t in local)
        probs, gates = out.gate_probs[row], out.gates[row]  # (2N,), (2N,)
        segment = Segment(start, end, text, *self._named(probs, gates))
        return _Piece(segment, tokens, probs, gates)

    def _named(self, probs: np.ndarray, gates: np.ndarray) -> tuple[dict[str, float], tuple[str, ...]]:
        """(2N,) probabilities and (2N,) bool gates -> {module: probability}, executed module names."""
        names = self._manifest.modules
        return (dict(zip(names, probs.tolist(), strict=True)),
                tuple(n for n, on in zip(names, gates.tolist(), strict=True) if on))

    def _finished(self, jobs: deque[_Job]) -> Iterator[ItemResult]:
        """Pop and yield the complete jobs at the front of the queue (results stay in order)."""
        while jobs and jobs[0].done and (jobs[0].error is not None or jobs[0].pending == 0):
            job = jobs.popleft()
            if job.error is not None:
                yield ItemResult(job.index, job.name, None, job.error)
            else:
                yield ItemResult(job.index, job.name, self._transcript(job), None)

    def _transcript(self, job: _Job) -> Transcript:
        pieces = [p for p in job.pieces if p is not None]
        weights = np.array([p.segment.end - p.segment.start for p in pieces])  # (S,) seconds
        probs = np.average(np.stack([p.probs for p in pieces]), axis=0, weights=weights)  # (2N,)
        ran = np.logical_or.reduce([p.gates for p in pieces])  # (2N,) ran in any segment
        gate_probs, executed = self._named(probs, ran)
        timings = dict(job.timings)
        timings["total"] = sum(job.timings.values())
        return Transcript(
            text=" ".join(p.segment.text for p in pieces if p.segment.text),
            tokens=tuple(chain.from_iterable(p.tokens for p in pieces)),
            gate_probs=gate_probs,
            executed_modules=executed,
            modules_executed=len(executed),
            modules_total=self.modules_total,
            duration=job.samples / self._feature_config.sample_rate,
            timings=timings,
            segments=tuple(p.segment for p in pieces),
        )
