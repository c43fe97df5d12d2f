"""WER / CER scoring (numpy-free, torch-free): used by training, ``i3d-edge eval`` and studies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tokens import normalize_text

__all__ = ["Score", "edit_distance", "score"]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two sequences (characters or words)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class Score:
    wer: float  # word errors / reference words
    cer: float  # character errors / reference characters
    sentence_accuracy: float  # fraction of utterances recognised exactly
    words: int  # reference words
    utterances: int


def score(refs: Sequence[str], hyps: Sequence[str]) -> Score:
    """Corpus-level WER/CER after text normalisation (lower case, punctuation dropped)."""
    word_err = char_err = words = chars = exact = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = normalize_text(ref), normalize_text(hyp)
        word_err += edit_distance(r.split(), h.split())
        char_err += edit_distance(r, h)
        words += len(r.split())
        chars += len(r)
        exact += r == h
    n = len(refs)
    return Score(word_err / max(1, words), char_err / max(1, chars), exact / max(1, n), words, n)
