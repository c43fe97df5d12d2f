"""Token confidences (decoding.span_confidences) and the words built from them, for the greedy
path and for the word-LM beam search (whose words are the LM's, each with the acoustic support
of the characters the LM chose)."""

from __future__ import annotations

import numpy as np
import pytest

from i3d_edge.ctc import TokenSpan, greedy_decode
from i3d_edge.manifest import load_manifest
from i3d_edge.runtime.decoding import make_decoder, span_confidences
from i3d_edge.runtime.lm_probe import LmSlot
from i3d_edge.runtime.results import TokenTiming, WordTiming, group_words
from i3d_edge.tokens import DEFAULT_TOKENS


def test_a_spans_confidence_is_its_tokens_mean_probability_over_its_frames():
    probs = np.array([[0.1, 0.9, 0.0], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.0, 0.0, 1.0]])  # (T=4, V=3)
    log_probs = np.log(np.maximum(probs, 1e-30)).astype(np.float32)
    got = span_confidences(log_probs, [TokenSpan(1, 0, 2), TokenSpan(2, 2, 4), TokenSpan(1, 3, 4)])
    np.testing.assert_allclose(got, [0.8, 0.65, 0.0], atol=1e-6)
    assert span_confidences(log_probs, []).shape == (0,)


def words_of(spans: list[TokenSpan], log_probs: np.ndarray) -> list[tuple[str, float]]:
    confidences = span_confidences(log_probs, spans)
    tokens = [TokenTiming(DEFAULT_TOKENS[s.id], s.start * 0.04, s.end * 0.04, float(c))
              for s, c in zip(spans, confidences, strict=True)]
    return [(w.word, round(w.confidence, 4)) for w in map(WordTiming.of, group_words(tokens))]


def test_lm_words_carry_how_well_the_audio_supports_them(lm_bundle):
    from tests.runtime.test_lm_decoding import misspelled

    frames, em = misspelled()  # greedy "wne twu" at 0.6 a frame; "o" is 0.3 at frames 1 and 9
    assert words_of(greedy_decode(em, len(frames)), em) == [("wne", 0.6), ("twu", 0.6)]
    lm = make_decoder("lm", LmSlot(load_manifest(lm_bundle)))
    # the LM's "one two": its "o"s have the acoustic support 0.3, the other letters 0.6
    assert words_of(lm(em, len(frames)), em) == [("one", 0.5), ("two", 0.5)]


@pytest.fixture
def lm_bundle(make_bundle, tmp_path):
    pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra (flashlight-text)")
    import shutil

    from i3d_edge.bundle.language_model import attach_language_model
    from tests.runtime.test_lm_decoding import SENTENCES

    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    attach_language_model(bundle, sentences=SENTENCES, order=2, lm_weight=1.0, word_score=0.0, beam_size=16)
    return bundle
