"""What the runtime returns: one frozen dataclass per concern, JSON-friendly via ``to_dict``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["STAGES", "ForwardOutput", "Segment", "TokenTiming", "Transcript", "WordTiming", "group_words"]

# Timed stages, in pipeline order; ``total`` is their sum.
STAGES = ("load", "features", "frontend", "gates", "modules", "head", "decode")


@dataclass(frozen=True)
class ForwardOutput:
    """Encoder output of one padded batch (see :meth:`Runtime.forward`)."""

    log_probs: np.ndarray  # (B, T', V) float32 CTC log-probabilities; frames >= lens[b] are padding
    lens: np.ndarray  # (B,) int64 valid encoder frames per row
    gate_probs: np.ndarray  # (B, 2N) float32 gate probabilities, module order (ones for vanilla bundles)
    gates: np.ndarray  # (B, 2N) bool: the modules that ran for each row
    timings: Mapping[str, float] = field(default_factory=dict)  # frontend/gates/modules/head -> seconds
    # module key -> (rows, frames) of its one session run in this forward: the rows that selected
    # it, trimmed to their longest valid length; a module no row selected is absent (never run)
    module_runs: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenTiming:
    """One emitted token and when it was spoken."""

    token: str  # the token's text (a character for the default vocabulary; " " separates words)
    start: float  # seconds from the start of the audio: first encoder frame of the token's CTC run
    end: float  # seconds: one past the last frame of the run
    confidence: float  # the model's probability of this token, averaged over the frames of its run

    def shifted(self, seconds: float) -> TokenTiming:
        """The same token ``seconds`` later (a segment's tokens placed in the whole audio)."""
        return TokenTiming(self.token, self.start + seconds, self.end + seconds, self.confidence)

    def within(self, start: float, end: float) -> TokenTiming:
        """The same token with its times clipped to ``[start, end]`` seconds."""
        lo, hi = min(max(self.start, start), end), min(max(self.end, start), end)
        return TokenTiming(self.token, lo, hi, self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class WordTiming:
    """One word: its tokens between two word separators (for LM decoding, exactly the LM's words)."""

    word: str
    start: float  # seconds: start of its first token
    end: float  # seconds: end of its last token
    confidence: float  # mean of its tokens' confidences

    @classmethod
    def of(cls, tokens: Sequence[TokenTiming]) -> WordTiming:
        return cls("".join(t.token for t in tokens), tokens[0].start, tokens[-1].end,
                   sum(t.confidence for t in tokens) / len(tokens))

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}


def group_words(tokens: Iterable[TokenTiming], boundaries: Iterable[float] = (), *, max_seconds: float = math.inf,
                max_chars: float = math.inf) -> list[tuple[TokenTiming, ...]]:
    """The tokens of each word, in order: words end at word-separator tokens and at ``boundaries``
    (segment ends, seconds: a word never spans two segments); a word longer than ``max_seconds``
    or ``max_chars`` is broken into pieces that are not (for subtitle cues)."""
    out: list[tuple[TokenTiming, ...]] = []
    current: list[TokenTiming] = []

    def flush() -> None:
        if current:
            out.append(tuple(current))
            current.clear()

    ends = iter(boundaries)
    boundary = next(ends, math.inf)
    for token in tokens:
        while token.start >= boundary:
            flush()
            boundary = next(ends, math.inf)
        if token.token.isspace():
            flush()
            continue
        if current and (token.end - current[0].start > max_seconds
                        or sum(len(t.token) for t in current) + len(token.token) > max_chars):
            flush()
        current.append(token)
    flush()
    return out


@dataclass(frozen=True)
class Segment:
    """One piece of long audio, decoded on its own (short audio is a single segment)."""

    start: float  # seconds from the start of the audio
    end: float  # seconds
    text: str  # the segment's transcript
    gate_probs: Mapping[str, float]  # module name -> gate probability for this segment
    executed_modules: tuple[str, ...]  # modules that ran for this segment, in execution order

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "gate_probs": {k: round(v, 6) for k, v in self.gate_probs.items()},
                "executed_modules": list(self.executed_modules)}


@dataclass(frozen=True)
class Transcript:
    """The transcription of one input (file or array)."""

    text: str  # segment texts joined with single spaces
    tokens: tuple[TokenTiming, ...]  # every emitted token with absolute times, in order
    gate_probs: Mapping[str, float]  # module name -> probability (duration-weighted mean over segments)
    executed_modules: tuple[str, ...]  # modules that ran for at least one segment, in execution order
    modules_executed: int  # len(executed_modules); for one segment, exactly the modules it ran
    modules_total: int  # gated modules in the model (2N)
    duration: float  # seconds of audio (at the model's sample rate)
    timings: Mapping[str, float]  # stage (STAGES and "total") -> seconds spent on this input
    segments: tuple[Segment, ...]  # the pieces long audio was cut into (one for short audio)

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio."""
        return self.timings.get("total", 0.0) / self.duration if self.duration else 0.0

    @property
    def words(self) -> tuple[WordTiming, ...]:
        """The words, timed: the tokens between word separators (never across a segment boundary)."""
        return tuple(WordTiming.of(w) for w in group_words(self.tokens, (s.end for s in self.segments)))

    @property
    def confidence(self) -> float | None:
        """Mean confidence of the tokens of the text (separators left out); None when nothing was said."""
        said = [t.confidence for t in self.tokens if not t.token.isspace()]
        return sum(said) / len(said) if said else None

    def to_dict(self) -> dict[str, Any]:
        confidence = self.confidence
        return {
            "text": self.text,
            "confidence": None if confidence is None else round(confidence, 4),
            "words": [w.to_dict() for w in self.words],
            "tokens": [t.to_dict() for t in self.tokens],
            "modules_executed": self.modules_executed,
            "modules_total": self.modules_total,
            "executed_modules": list(self.executed_modules),
            "gate_probs": {k: round(v, 6) for k, v in self.gate_probs.items()},
            "duration": round(self.duration, 3),
            "rtf": round(self.rtf, 4),
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "segments": [s.to_dict() for s in self.segments],
        }
