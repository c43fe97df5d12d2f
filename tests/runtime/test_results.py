"""The JSON form of results (``to_dict``, what ``transcribe -f json`` prints): every value, rounded
as documented (times to the millisecond, probabilities and timings to 6 digits, RTF to 4)."""

from __future__ import annotations

import json

from i3d_edge.runtime import Segment, TokenTiming, Transcript


def test_token_and_segment_values():
    assert TokenTiming("a", 0.1234567, 0.9876543).to_dict() == {"token": "a", "start": 0.123, "end": 0.988}
    segment = Segment(1.2345678, 31.9876543, "one two", {"layer00.mha": 0.12345678, "layer00.ffn": 0.98765432},
                      ("layer00.ffn",))
    assert segment.to_dict() == {"start": 1.235, "end": 31.988, "text": "one two",
                                 "gate_probs": {"layer00.mha": 0.123457, "layer00.ffn": 0.987654},
                                 "executed_modules": ["layer00.ffn"]}


def test_transcript_values():
    segment = Segment(0.0, 2.7182818, "hi", {"layer00.mha": 0.5}, ("layer00.mha",))
    transcript = Transcript(
        text="hi", tokens=(TokenTiming("h", 0.0404, 0.0808), TokenTiming("i", 0.1212345, 0.16)),
        gate_probs={"layer00.mha": 0.33333333, "layer00.ffn": 0.77777777}, executed_modules=("layer00.mha",),
        modules_executed=1, modules_total=2, duration=2.7182818,
        timings={"features": 0.001234567, "total": 0.314159265}, segments=(segment,))
    data = transcript.to_dict()
    assert data == {
        "text": "hi",
        "tokens": [{"token": "h", "start": 0.04, "end": 0.081}, {"token": "i", "start": 0.121, "end": 0.16}],
        "modules_executed": 1, "modules_total": 2, "executed_modules": ["layer00.mha"],
        "gate_probs": {"layer00.mha": 0.333333, "layer00.ffn": 0.777778},
        "duration": 2.718, "rtf": 0.1156,  # 0.314159265 / 2.7182818 = 0.115573...
        "timings": {"features": 0.001235, "total": 0.314159},
        "segments": [{"start": 0.0, "end": 2.718, "text": "hi", "gate_probs": {"layer00.mha": 0.5},
                      "executed_modules": ["layer00.mha"]}],
    }
    assert json.loads(json.dumps(data)) == data
    assert Transcript(**{**transcript.__dict__, "duration": 0.0}).rtf == 0.0  # no audio: no division
