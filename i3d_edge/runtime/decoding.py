"""CTC decoders of the runtime: greedy (numpy) and word-LM beam search (flashlight-text + KenLM).

The beam search is flashlight's lexicon decoder, the C++ decoder behind torchaudio's
``ctc_decoder``: a prefix trie of the LM's words spelled in the model's characters (the word
separator ``" "`` ends every word), a KenLM word n-gram model read from the bundle's ARPA file,
and hypotheses scored as acoustic log-probability + ``lm_weight`` x LM log10-probability +
``word_score`` per word. It can only emit words of the LM's vocabulary. ``flashlight-text`` is
the optional ``[lm]`` extra (prebuilt wheels, KenLM included); it is imported only when a
language model is used.

Both decoders return :class:`~i3d_edge.ctc.TokenSpan` lists (token id, encoder frames
[start, end)), so timestamps and text are built the same way whichever decoder ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..ctc import TokenSpan, greedy_decode, runs
from ..errors import BundleError, ConfigError, native_reason
from ..extras import install_hint
from ..lm import UNK, read_arpa_vocab
from ..manifest import DecoderSpec, Manifest
from ..tokens import BLANK, SEPARATOR, TokenTable

__all__ = ["Decoder", "LanguageModel", "LmSource", "lm_available", "make_decoder", "path_spans", "resolve_decoder",
           "span_confidences"]

# (log_probs (T, V) float32, valid frames) -> token spans
Decoder = Callable[[np.ndarray, int], list[TokenSpan]]


def lm_available() -> bool:
    """Whether flashlight-text (with KenLM) can be imported."""
    try:
        _flashlight()
    except ConfigError:
        return False
    return True


def _flashlight() -> tuple[Any, Any, Any]:
    try:
        from flashlight.lib.text import decoder
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary
    except ImportError as exc:
        raise ConfigError("language-model decoding needs the flashlight-text package: "
                          f"{install_hint('lm')}, or use decoder='greedy'") from exc
    return decoder, KenLM, Dictionary


_STDERR_LOCK = threading.Lock()  # fd 2 is process-wide: one redirect at a time


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C++ writes to fd 2 while KenLM reads an ARPA file (it prints a progress bar).

    The whole process's stderr is muted for that time (the LM loads at the first LM decode)."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no usable stderr: nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LanguageModel:
    """A bundle's KenLM model and the lexicon trie of its words: loaded once, shared read-only."""

    def __init__(self, path: Path, tokens: TokenTable) -> None:
        fl, KenLM, Dictionary = _flashlight()
        index = {t: i for i, t in enumerate(tokens.tokens)}
        if SEPARATOR not in index:
            raise BundleError(f"{path}: the token table has no word separator {SEPARATOR!r}: no LM decoding")
        self.separator = index[SEPARATOR]
        self.blank = tokens.tokens.index(BLANK)
        try:
            words = read_arpa_vocab(path)
        except ConfigError as exc:
            raise BundleError(f"{path}: not a usable ARPA language model ({exc})".replace(f"({path}: ", "(")) from None
        self.words = Dictionary()
        self.words.add_entry(UNK)
        spellings: list[tuple[int, list[int]]] = []
        for word in dict.fromkeys(words):  # unique, in file order
            if all(c in index and c != SEPARATOR for c in word):  # spellable in the model's characters
                self.words.add_entry(word)
                spellings.append((self.words.get_index(word), [index[c] for c in word] + [self.separator]))
        if not spellings:
            raise BundleError(f"{path}: no word of the language model can be spelled with the model's tokens")
        try:
            with _quiet_stderr():
                self.kenlm = KenLM(str(path), self.words)
            start = self.kenlm.start(False)
            self.trie = fl.Trie(len(tokens), self.separator)
            for word_id, spelling in spellings:
                self.trie.insert(spelling, word_id, self.kenlm.score(start, word_id)[1])
            self.trie.smear(fl.SmearingMode.MAX)  # a prefix's score: its best completion's unigram score
        except (RuntimeError, ValueError) as exc:  # KenLM's format errors, flashlight's checks
            raise BundleError(f"{path}: not a usable ARPA language model ({native_reason(exc)})") from None
        self.unk = self.words.get_index(UNK)
        self.vocab_size = len(spellings)


class _BeamDecoder:
    """flashlight's LexiconDecoder over the bundle's LanguageModel, built at the first decode (a
    Runtime that never decodes never loads the LM); one decode at a time (the decoder keeps state)."""

    def __init__(self, slot: LmSource, settings: DecoderSpec) -> None:
        self._slot = slot
        self._settings = settings
        self._decoder: Any = None  # flashlight LexiconDecoder
        self._separator = self._blank = 0
        self._lock = threading.Lock()

    def _build(self) -> Any:
        fl, _, _ = _flashlight()
        lm, s = self._slot.get(), self._settings
        options = fl.LexiconDecoderOptions(
            beam_size=s.beam_size, beam_size_token=len(self._slot.manifest.tokens),
            beam_threshold=s.beam_threshold,
            lm_weight=s.lm_weight, word_score=s.word_score, unk_score=float("-inf"),
            sil_score=0.0, log_add=False, criterion_type=fl.CriterionType.CTC)
        self._separator, self._blank = lm.separator, lm.blank
        return fl.LexiconDecoder(options, lm.trie, lm.kenlm, lm.separator, lm.blank, lm.unk, [], False)

    def __call__(self, log_probs: np.ndarray, length: int) -> list[TokenSpan]:
        if length <= 0:
            return []
        with self._lock:
            if self._decoder is None:
                self._decoder = self._build()
            # Every lexicon spelling ends with the separator, so one certain separator frame is
            # appended: the last word completes (and is scored by the LM) like any other.
            emissions = np.full((length + 1, log_probs.shape[-1]), -1e4, dtype=np.float32)  # (T+1, V)
            emissions[:length] = log_probs[:length]
            emissions[length, self._separator] = 0.0
            results = self._decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        if not results:
            return []
        # tokens: one per frame, framed by a separator before the first frame and after the last
        path = np.asarray(results[0].tokens, dtype=np.int64)[1: length + 1]  # (T,)
        return path_spans(path, self._blank, self._separator)


def path_spans(path: np.ndarray, blank: int, separator: int) -> list[TokenSpan]:
    """Frame-level token path (T,) -> CTC-collapsed spans, one separator between words, none at the ends."""
    spans: list[TokenSpan] = []
    for run in runs(path):
        if run.id == blank or (run.id == separator and (not spans or spans[-1].id == separator)):
            continue
        spans.append(run)
    while spans and spans[-1].id == separator:
        spans.pop()
    return spans


def span_confidences(log_probs: np.ndarray, spans: list[TokenSpan]) -> np.ndarray:
    """Each span's confidence: the model's probability of its token averaged over the span's frames
    (log_probs (T, V) -> (len(spans),) float64 in [0, 1]). The same for both decoders: for LM
    decoding it is how strongly the audio itself supports the token the LM chose."""
    if not spans:
        return np.zeros(0)
    lengths = np.array([s.end - s.start for s in spans])  # (S,) frames per span, each >= 1
    frames = np.concatenate([np.arange(s.start, s.end) for s in spans])  # (sum lengths,)
    ids = np.repeat([s.id for s in spans], lengths)  # (sum lengths,)
    probs = np.exp(log_probs[frames, ids].astype(np.float64))  # (sum lengths,)
    return np.clip(np.add.reduceat(probs, np.cumsum(lengths) - lengths) / lengths, 0.0, 1.0)


class LmSource(Protocol):
    """Where a decoder gets the bundle's LanguageModel (``lm_probe.LmSlot``: probed, then loaded once)."""

    manifest: Manifest

    def get(self) -> LanguageModel: ...


def resolve_decoder(choice: str, spec: DecoderSpec | None) -> str:
    """``auto`` / ``greedy`` / ``lm`` -> the decoder that will run (``greedy`` or ``lm``)."""
    if choice == "greedy":
        return "greedy"
    if choice == "lm":
        if spec is None:
            raise ConfigError("decoder='lm' needs a bundle with a language model (attach one with `i3d-edge lm`)")
        _flashlight()  # a clear error now rather than at the first decode
        return "lm"
    return "lm" if spec is not None and lm_available() else "greedy"


def make_decoder(kind: str, slot: LmSource, *, lm_weight: float | None = None, word_score: float | None = None,
                 beam_size: int | None = None) -> Decoder:
    """The decoder function for ``kind`` (from :func:`resolve_decoder`) over the bundle of ``slot``;
    LM settings default to the bundle's."""
    spec = slot.manifest.decoder
    if kind == "greedy" or spec is None:
        return greedy_decode
    return _BeamDecoder(slot, dataclasses.replace(
        spec, lm_weight=spec.lm_weight if lm_weight is None else lm_weight,
        word_score=spec.word_score if word_score is None else word_score,
        beam_size=spec.beam_size if beam_size is None else beam_size))
