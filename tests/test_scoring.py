"""Word and character error rates, sentence accuracy and edit distance (``i3d_edge.scoring``)."""

from __future__ import annotations

import pytest

from i3d_edge.scoring import edit_distance, score


def test_scoring():
    assert edit_distance("kitten", "sitting") == 3
    s = score(["The cat sat.", "hello"], ["the cat sat", "yellow"])
    assert s.words == 4 and s.wer == pytest.approx(1 / 4) and s.sentence_accuracy == 0.5
    assert s.cer == pytest.approx(edit_distance("hello", "yellow") / (len("the cat sat") + len("hello")))
