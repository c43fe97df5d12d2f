"""Subtitle documents from a Transcript's word timings: SubRip (srt), WebVTT (vtt) and whisper's
tab-separated cues (tsv)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .results import Transcript, WordTiming, group_words

__all__ = ["MAX_CUE_CHARS", "Cue", "cues", "to_srt", "to_tsv", "to_vtt", "words"]

MAX_CUE_SECONDS = 7.0  # a cue never spans more than this
MAX_CUE_CHARS = 42  # nor holds more characters than this (one subtitle line; --max-line-chars)
MAX_PAUSE = 2.0  # a longer silence between words starts a new cue


@dataclass(frozen=True)
class Cue:
    """One subtitle: a run of words shown together."""

    start: float  # seconds
    end: float  # seconds
    text: str


def words(transcript: Transcript, max_seconds: float = MAX_CUE_SECONDS, max_chars: int = MAX_CUE_CHARS
          ) -> list[WordTiming]:
    """The transcript's words (:attr:`Transcript.words`), a word longer than a cue (``max_seconds``
    / ``max_chars``) broken into pieces that fit."""
    return [WordTiming.of(w) for w in group_words(transcript.tokens, (s.end for s in transcript.segments),
                                                  max_seconds=max_seconds, max_chars=max_chars)]


def cues(items: Sequence[WordTiming], max_seconds: float = MAX_CUE_SECONDS, max_chars: int = MAX_CUE_CHARS,
         max_pause: float = MAX_PAUSE) -> list[Cue]:
    """Greedy grouping of words into cues of at most ``max_seconds`` and ``max_chars``."""
    out: list[Cue] = []
    group: list[WordTiming] = []
    for word in items:
        if group:
            text = " ".join(w.word for w in group)
            if (len(text) + 1 + len(word.word) > max_chars or word.end - group[0].start > max_seconds
                    or word.start - group[-1].end > max_pause):
                out.append(Cue(group[0].start, group[-1].end, text))
                group = []
        group.append(word)
    if group:
        out.append(Cue(group[0].start, group[-1].end, " ".join(w.word for w in group)))
    return out


def _cues(transcript: Transcript, max_chars: int) -> list[Cue]:
    if max_chars < 1:
        raise ValueError(f"a subtitle line needs at least 1 character, got {max_chars}")
    return cues(words(transcript, max_chars=max_chars), max_chars=max_chars)


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript, max_chars: int = MAX_CUE_CHARS) -> str:
    """SubRip document: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank-line separated;
    each cue one line of at most ``max_chars`` characters."""
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n"
              for i, c in enumerate(_cues(transcript, max_chars), 1)]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript, max_chars: int = MAX_CUE_CHARS) -> str:
    """WebVTT document: ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in _cues(transcript, max_chars)]
    return "\n".join(["WEBVTT\n", *blocks])


def to_tsv(transcript: Transcript, max_chars: int = MAX_CUE_CHARS) -> str:
    """whisper's tsv: a ``start<TAB>end<TAB>text`` header, then one line per cue, times in integer
    milliseconds."""
    rows = [f"{round(c.start * 1000)}\t{round(c.end * 1000)}\t{c.text}\n" for c in _cues(transcript, max_chars)]
    return "".join(["start\tend\ttext\n", *rows])
