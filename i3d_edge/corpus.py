"""Corpus directories, the one layout that training (``models/data.py``) and evaluation read.

A corpus directory holds ``transcripts.tsv`` (``id<TAB>text``) and audio files named by id,
either next to the tsv or under ``audio/`` (wav, flac or ogg).
"""

from __future__ import annotations

from pathlib import Path

from .errors import CorpusError

__all__ = ["CORPUS_AUDIO_EXTENSIONS", "read_corpus"]

CORPUS_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # looked up in this order for each id


def read_corpus(corpus: Path) -> list[tuple[str, Path, str]]:
    """(id, audio path, text) for every line of ``corpus/transcripts.tsv`` whose audio exists."""
    tsv = Path(corpus) / "transcripts.tsv"
    if not tsv.is_file():
        raise CorpusError(f"{tsv}: missing (a corpus needs transcripts.tsv and audio files named by id)")
    items = []
    for line in tsv.read_text(encoding="utf-8").splitlines():
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
