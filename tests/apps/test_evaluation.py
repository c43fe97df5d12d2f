"""``i3d-edge eval`` on random-weight bundles and generated audio."""

from __future__ import annotations

import json
import time

import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.apps.evaluation import evaluate_corpus
from i3d_edge.cli import app
from i3d_edge.runtime import Runtime
from i3d_edge.scoring import score
from tests.conftest import speechlike

runner = CliRunner()


def test_eval_json(make_bundle, corpus):
    bundle = make_bundle("global", 2)
    result = runner.invoke(app, ["eval", str(corpus), "--model", str(bundle), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["utterances"] == 4 and report["modules_total"] == 4
    assert 0.0 <= report["executed_fraction"] <= 1.0 and report["rtf"] > 0
    assert report["wer"] >= 0.9  # random weights cannot transcribe
    full = json.loads(runner.invoke(app, ["eval", str(corpus), "--model", str(bundle), "--json",
                                          "--full-depth"]).stdout)
    assert full["executed_fraction"] == 1.0


def test_eval_missing_transcripts_is_one_line_error(make_bundle, tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path), "--model", str(make_bundle("global", 2))])
    assert result.exit_code == 1 and "transcripts.tsv" in result.output and "Traceback" not in result.output




def test_every_field_of_the_report_against_an_independent_count(make_bundle, tmp_path):
    """Two clips of 0.3 s and 0.45 s (0.75 s of audio in all, under 1 s so that the RTF's guard
    against silence cannot hide a wrong division), references chosen here."""
    rt = Runtime(make_bundle("global", 2), threshold=0.5)
    refs = {"a": "hello world", "b": "one two three"}
    for (utt, text), seconds in zip(refs.items(), (0.3, 0.45), strict=True):
        sf.write(tmp_path / f"{utt}.wav", speechlike(seconds, seed=len(text)), 16000, subtype="PCM_16")
    (tmp_path / "transcripts.tsv").write_text("".join(f"{u}\t{t}\n" for u, t in refs.items()), encoding="utf-8")
    alone = [rt.transcribe(tmp_path / f"{utt}.wav") for utt in refs]  # the same runtime, file by file
    started = time.perf_counter()
    report = evaluate_corpus(rt, tmp_path, batch_size=1)
    wall = time.perf_counter() - started
    expected = score(list(refs.values()), [t.text for t in alone])
    assert report.corpus == str(tmp_path) and report.utterances == 2 and report.decoder == "greedy"
    assert (report.wer, report.cer, report.sentence_accuracy) == (expected.wer, expected.cer,
                                                                  expected.sentence_accuracy)
    assert report.audio_seconds == pytest.approx(0.75)
    assert report.modules_executed == pytest.approx(sum(t.modules_executed for t in alone) / 2)
    assert report.modules_total == 4 and report.executed_fraction == pytest.approx(report.modules_executed / 4)
    assert 0 < report.processing_seconds <= wall
    assert report.rtf == pytest.approx(report.processing_seconds / 0.75)
    assert evaluate_corpus(rt, tmp_path, limit=1).utterances == 1
