"""Corpus directories, the one layout that training (``models/data.py``) and evaluation read.

A corpus directory holds ``transcripts.tsv`` (``id<TAB>text``) and audio files named by id,
either next to the tsv or under ``audio/`` (wav, flac or ogg).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .errors import CorpusError

__all__ = ["CORPUS_AUDIO_EXTENSIONS", "read_corpus"]

CORPUS_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # looked up in this order for each id


MAX_LINE_CHARS = 1 << 16  # characters of one line of transcripts.tsv


def _lines(tsv: Path) -> Iterator[str]:
    """The lines of ``tsv`` (without line ends), read one at a time: a line longer than MAX_LINE_CHARS
    (a file of one endless line, a sparse file of zeros) or bytes that are not UTF-8 are a CorpusError."""
    try:
        with open(tsv, encoding="utf-8", newline=None) as f:
            for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_CHARS + 1), ""), start=1):
                if len(line) > MAX_LINE_CHARS:
                    raise CorpusError(f"{tsv}: line {number} is longer than {MAX_LINE_CHARS} characters")
                yield line.rstrip("\n")
    except OSError as exc:
        raise CorpusError(f"{tsv}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CorpusError(f"{tsv}: not UTF-8 text") from None


def read_corpus(corpus: Path) -> list[tuple[str, Path, str]]:
    """(id, audio path, text) for every line of ``corpus/transcripts.tsv`` whose audio exists."""
    tsv = Path(corpus) / "transcripts.tsv"
    if not tsv.is_file():
        raise CorpusError(f"{tsv}: missing (a corpus needs transcripts.tsv and audio files named by id)")
    items = []
    for line in _lines(tsv):
        utt, sep, text = line.partition("\t")
        if not sep:
            continue
        for folder in (tsv.parent / "audio", tsv.parent):
            found = next((folder / f"{utt}{ext}" for ext in CORPUS_AUDIO_EXTENSIONS
                          if (folder / f"{utt}{ext}").is_file()), None)
            if found:
                items.append((utt, found, text))
                break
    if not items:
        raise CorpusError(f"{tsv}: no line has a matching audio file")
    return items
