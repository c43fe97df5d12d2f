"""Segments share batches under one budget for both frontends: rows x encoder frames^2 of a batch
never exceeds that of one maximum-length segment, and for a waveform frontend (whose conv
activations grow with the samples) neither do rows x encoder frames.

A waveform bundle's input rows are raw samples (320 per encoder frame for a wav2vec2-style conv
stack), a log-mel bundle's are 10 ms frames (4 per encoder frame); the budget counts encoder
frames for both. Observed through the public ``Runtime.session_runs`` counter (one frontend run
per batch); batched transcripts equal those of one segment per batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from i3d_edge.runtime import Runtime, Transcript
from tests.conftest import speechlike

# (name, segment_seconds, clip seconds, number of clips, frontend runs: waveform, log-mel).
# With segment_seconds 6 the longest segment has 300 (waveform) / 148 (log-mel) encoder frames.
CASES = (
    ("1s-x10", 30.0, 1.0, 10, 2, 2),  # batch_size 8: 8 + 2 (before the encoder-frame budget: 10 waveform batches)
    ("1.4s-x7", 6.0, 1.4, 7, 2, 1),  # waveform 70 frames: 4 x 70 <= 300 < 5 x 70 -> 4 + 3; log-mel (33): all 7
    ("3.2s-x7", 6.0, 3.2, 7, 7, 3),  # waveform 160: 2 x 160 > 300 -> alone; log-mel 78: 3 x 78^2 <= 148^2 < 4 x
    ("5s-x2", 6.0, 5.0, 2, 2, 2),  # 2 x 250^2 > 300^2 (log-mel 2 x 123^2 > 148^2): one per batch
)
IDS = [c[0] for c in CASES]


def _clips(seconds: float, count: int) -> list[np.ndarray]:
    # slightly different lengths (and content) so that batches are padded
    return [speechlike(seconds - 0.01 * i, seed=i) for i in range(count)]


def _run(bundle: Path, clips: list[np.ndarray], **options) -> tuple[list[Transcript], int]:
    """Transcripts and the number of batches (frontend session runs) they took."""
    rt = Runtime(bundle, threads=1, **options)
    before = rt.session_runs["frontend"]
    out = rt.transcribe_batch(clips, 16000)
    return out, rt.session_runs["frontend"] - before


def _same(a: list[Transcript], b: list[Transcript]) -> None:
    assert [t.text for t in a] == [t.text for t in b]
    assert [[(k.token, round(k.start, 6)) for k in t.tokens] for t in a] == \
        [[(k.token, round(k.start, 6)) for k in t.tokens] for t in b]
    for ta, tb in zip(a, b, strict=True):
        assert ta.executed_modules == tb.executed_modules
        assert np.allclose(list(ta.gate_probs.values()), list(tb.gate_probs.values()), atol=1e-5)


@pytest.mark.parametrize(("segment_seconds", "seconds", "count", "batches"), [c[1:5] for c in CASES], ids=IDS)
def test_waveform_segments_share_batches(waveform_bundle: Path, segment_seconds: float, seconds: float,
                                         count: int, batches: int) -> None:
    clips = _clips(seconds, count)
    batched, runs = _run(waveform_bundle, clips, segment_seconds=segment_seconds)
    alone, runs_alone = _run(waveform_bundle, clips, segment_seconds=segment_seconds, batch_size=1)
    assert runs == batches and runs_alone == count
    assert sum(len(t.tokens) for t in alone) > 0  # the comparison is not between empty transcripts
    _same(batched, alone)


@pytest.mark.parametrize(("segment_seconds", "seconds", "count", "batches"), [(*c[1:4], c[5]) for c in CASES],
                         ids=IDS)
def test_log_mel_batching_is_unchanged(make_bundle, segment_seconds: float, seconds: float, count: int,
                                       batches: int) -> None:
    # the counts of the former budget (rows x log-mel frames^2), e.g. 3.2 s: 3 x 318^2 <= 600^2 < 4 x 318^2
    bundle = make_bundle()
    clips = _clips(seconds, count)
    batched, runs = _run(bundle, clips, segment_seconds=segment_seconds)
    alone, runs_alone = _run(bundle, clips, segment_seconds=segment_seconds, batch_size=1)
    assert runs == batches and runs_alone == count
    _same(batched, alone)


def test_a_long_waveform_input_runs_one_segment_per_batch(waveform_bundle: Path) -> None:
    # 13 s at segment_seconds 6: segments of about 6 s (~300 frames) fill the budget on their own
    audio = speechlike(13.0, seed=3)
    (t,), runs = _run(waveform_bundle, [audio], segment_seconds=6.0)
    assert len(t.segments) == runs >= 3
