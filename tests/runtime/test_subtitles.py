"""srt, vtt and tsv documents: cues built from whole words, at most --max-line-chars long."""

from __future__ import annotations

import pytest

from i3d_edge.runtime import Segment, TokenTiming, Transcript
from i3d_edge.runtime.subtitles import to_srt, to_tsv, to_vtt

TEXT = "the quick brown fox jumps over the lazy dog"


def transcript(text: str = TEXT) -> Transcript:
    tokens = tuple(TokenTiming(c, 0.1 * i, 0.1 * i + 0.05, 0.9) for i, c in enumerate(text))  # 100 ms a character
    duration = 0.1 * len(text)
    return Transcript(text, tokens, {}, (), 0, 0, duration, {}, (Segment(0.0, duration, text, {}, ()),))


def test_cues_hold_whole_words_up_to_the_line_length():
    t = transcript()
    assert to_srt(t, 15) == ("1\n00:00:00,000 --> 00:00:01,450\nthe quick brown\n\n"
                             "2\n00:00:01,600 --> 00:00:02,950\nfox jumps over\n\n"
                             "3\n00:00:03,100 --> 00:00:04,250\nthe lazy dog\n")
    assert to_vtt(t, 15) == ("WEBVTT\n\n00:00:00.000 --> 00:00:01.450\nthe quick brown\n\n"
                             "00:00:01.600 --> 00:00:02.950\nfox jumps over\n\n"
                             "00:00:03.100 --> 00:00:04.250\nthe lazy dog\n")
    assert to_tsv(t, 15) == "start\tend\ttext\n0\t1450\tthe quick brown\n1600\t2950\tfox jumps over\n" \
                            "3100\t4250\tthe lazy dog\n"
    # 42 characters by default: the 43 of TEXT are two lines
    assert to_tsv(t) == "start\tend\ttext\n0\t3850\tthe quick brown fox jumps over the lazy\n4000\t4250\tdog\n"


def test_a_word_longer_than_a_line_is_cut_and_lines_never_exceed_it():
    t = transcript("a supercalifragilistic word")
    lines = to_tsv(t, 8).splitlines()[1:]
    assert [line.split("\t")[2] for line in lines] == ["a", "supercal", "ifragili", "stic", "word"]
    for n in (1, 5, 12, 42):
        assert all(len(line.split("\t")[2]) <= n for line in to_tsv(t, n).splitlines()[1:])
    with pytest.raises(ValueError, match="at least 1 character"):
        to_srt(t, 0)


def test_nothing_said_is_an_empty_document():
    t = transcript("")
    assert (to_srt(t), to_vtt(t), to_tsv(t)) == ("", "WEBVTT\n", "start\tend\ttext\n")
