"""``i3d-edge eval`` on random-weight bundles and generated audio."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from i3d_edge.cli import app

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


