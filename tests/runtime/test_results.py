"""The JSON form of results (``to_dict``, what ``transcribe -f json`` prints): every value, rounded
as documented (times to the millisecond, probabilities and timings to 6 digits, RTF and
confidences to 4); words and the utterance confidence made from the tokens."""

from __future__ import annotations

import json

import pytest

from i3d_edge.runtime import Segment, TokenTiming, Transcript, WordTiming
from i3d_edge.runtime.results import group_words


def test_token_and_segment_values():
    assert TokenTiming("a", 0.1234567, 0.9876543, 0.87654321).to_dict() == {
        "token": "a", "start": 0.123, "end": 0.988, "confidence": 0.8765}
    assert TokenTiming("a", 0.5, 0.54, 0.9).shifted(30.0) == TokenTiming("a", 30.5, 30.54, 0.9)
    segment = Segment(1.2345678, 31.9876543, "one two", {"layer00.mha": 0.12345678, "layer00.ffn": 0.98765432},
                      ("layer00.ffn",))
    assert segment.to_dict() == {"start": 1.235, "end": 31.988, "text": "one two",
                                 "gate_probs": {"layer00.mha": 0.123457, "layer00.ffn": 0.987654},
                                 "executed_modules": ["layer00.ffn"]}


def test_transcript_values():
    segment = Segment(0.0, 2.7182818, "hi", {"layer00.mha": 0.5}, ("layer00.mha",))
    transcript = Transcript(
        text="hi", tokens=(TokenTiming("h", 0.0404, 0.0808, 0.9), TokenTiming("i", 0.1212345, 0.16, 0.6)),
        gate_probs={"layer00.mha": 0.33333333, "layer00.ffn": 0.77777777}, executed_modules=("layer00.mha",),
        modules_executed=1, modules_total=2, duration=2.7182818,
        timings={"features": 0.001234567, "total": 0.314159265}, segments=(segment,))
    data = transcript.to_dict()
    assert data == {
        "text": "hi",
        "confidence": 0.75,
        "words": [{"word": "hi", "start": 0.04, "end": 0.16, "confidence": 0.75}],
        "tokens": [{"token": "h", "start": 0.04, "end": 0.081, "confidence": 0.9},
                   {"token": "i", "start": 0.121, "end": 0.16, "confidence": 0.6}],
        "modules_executed": 1, "modules_total": 2, "executed_modules": ["layer00.mha"],
        "gate_probs": {"layer00.mha": 0.333333, "layer00.ffn": 0.777778},
        "duration": 2.718, "rtf": 0.1156,  # 0.314159265 / 2.7182818 = 0.115573...
        "timings": {"features": 0.001235, "total": 0.314159},
        "segments": [{"start": 0.0, "end": 2.718, "text": "hi", "gate_probs": {"layer00.mha": 0.5},
                      "executed_modules": ["layer00.mha"]}],
    }
    assert json.loads(json.dumps(data)) == data
    assert Transcript(**{**transcript.__dict__, "duration": 0.0}).rtf == 0.0  # no audio: no division
    silent = Transcript(**{**transcript.__dict__, "text": "", "tokens": ()})
    assert (silent.confidence, silent.words) == (None, ())
    assert (silent.to_dict()["confidence"], silent.to_dict()["words"]) == (None, [])


def tokens_of(spec: str, start: float = 0.0, confidence: float = 1.0) -> list[TokenTiming]:
    """One 40 ms token per character of ``spec`` (" " a word separator)."""
    return [TokenTiming(c, start + 0.04 * i, start + 0.04 * (i + 1), confidence) for i, c in enumerate(spec)]


def test_words_split_at_separators_and_segment_ends():
    first = tokens_of("to the", confidence=0.5)
    second = tokens_of("value", start=0.24, confidence=1.0)  # a new segment starts at 0.24 s, mid-"thevalue"
    segments = (Segment(0.0, 0.24, "to the", {}, ()), Segment(0.24, 0.5, "value", {}, ()))
    t = Transcript("to the value", (*first, *second), {}, (), 0, 0, 0.5, {}, segments)
    assert t.words == (WordTiming("to", 0.0, 0.08, 0.5), WordTiming("the", 0.12, 0.24, 0.5),
                       WordTiming("value", 0.24, 0.44, 1.0))
    assert t.confidence == pytest.approx((5 * 0.5 + 5 * 1.0) / 10)  # the separator is not said
    # without the boundary, "the" and "value" would be one word; a long word is cut only when asked
    assert ["".join(x.token for x in w) for w in group_words((*first, *second))] == ["to", "thevalue"]
    assert ["".join(x.token for x in w) for w in group_words(second, max_chars=2)] == ["va", "lu", "e"]
    assert ["".join(x.token for x in w) for w in group_words(second, max_seconds=0.1)] == ["va", "lu", "e"]
