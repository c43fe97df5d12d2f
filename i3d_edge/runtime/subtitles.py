"""Word timings and SubRip (srt) / WebVTT subtitles from a Transcript's token timings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .results import TokenTiming, Transcript

__all__ = ["Cue", "Word", "cues", "to_srt", "to_vtt", "words"]

MAX_CUE_SECONDS = 7.0  # a cue never spans more than this
MAX_CUE_CHARS = 42  # nor holds more characters than this (one subtitle line)
MAX_PAUSE = 2.0  # a longer silence between words starts a new cue


@dataclass(frozen=True)
class Word:
    """A word and when it was spoken (seconds)."""

    text: str
    start: float  # start of its first token
    end: float  # end of its last token


@dataclass(frozen=True)
class Cue:
    """One subtitle: a run of words shown together."""

    start: float  # seconds
    end: float  # seconds
    text: str


def words(transcript: Transcript, max_seconds: float = MAX_CUE_SECONDS, max_chars: int = MAX_CUE_CHARS
          ) -> list[Word]:
    """Words from the token timings: split at word-separator tokens and at segment boundaries;
    a run of tokens longer than a cue (``max_seconds`` / ``max_chars``) is broken up."""
    out: list[Word] = []
    current: list[TokenTiming] = []

    def flush() -> None:
        if current:
            out.append(Word("".join(t.token for t in current), current[0].start, current[-1].end))
            current.clear()

    ends = iter([s.end for s in transcript.segments])
    segment_end = next(ends, math.inf)
    for token in transcript.tokens:
        while token.start >= segment_end:  # a word never spans two segments
            flush()
            segment_end = next(ends, math.inf)
        if token.token.isspace():
            flush()
            continue
        if current and (token.end - current[0].start > max_seconds
                        or sum(len(t.token) for t in current) + len(token.token) > max_chars):
            flush()
        current.append(token)
    flush()
    return out


def cues(items: Sequence[Word], max_seconds: float = MAX_CUE_SECONDS, max_chars: int = MAX_CUE_CHARS,
         max_pause: float = MAX_PAUSE) -> list[Cue]:
    """Greedy grouping of words into cues of at most ``max_seconds`` and ``max_chars``."""
    out: list[Cue] = []
    group: list[Word] = []
    for word in items:
        if group:
            text = " ".join(w.text for w in group)
            if (len(text) + 1 + len(word.text) > max_chars or word.end - group[0].start > max_seconds
                    or word.start - group[-1].end > max_pause):
                out.append(Cue(group[0].start, group[-1].end, text))
                group = []
        group.append(word)
    if group:
        out.append(Cue(group[0].start, group[-1].end, " ".join(w.text for w in group)))
    return out


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript) -> str:
    """SubRip document: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank-line separated."""
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n"
              for i, c in enumerate(cues(words(transcript)), 1)]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT document: ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in cues(words(transcript))]
    return "\n".join(["WEBVTT\n", *blocks])
