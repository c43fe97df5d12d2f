"""``i3d-edge eval`` and ``i3d-edge analyze`` on random-weight bundles and generated audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.apps.analysis import estimate_snr_db
from i3d_edge.cli import app
from i3d_edge.scoring import edit_distance, score
from tests.conftest import speechlike

runner = CliRunner()


def test_scoring():
    assert edit_distance("kitten", "sitting") == 3
    s = score(["The cat sat.", "hello"], ["the cat sat", "yellow"])
    assert s.words == 4 and s.wer == pytest.approx(1 / 4) and s.sentence_accuracy == 0.5
    assert s.cer == pytest.approx(edit_distance("hello", "yellow") / (len("the cat sat") + len("hello")))


def test_snr_estimate_orders_clean_above_noisy():
    rng = np.random.default_rng(0)
    clean = speechlike(3.0)
    clean[:16000] *= 0.001  # a quiet stretch gives the noise floor
    noisy = clean + 0.05 * rng.standard_normal(clean.size).astype(np.float32)
    assert estimate_snr_db(clean, 16000) > estimate_snr_db(noisy, 16000) + 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    lines = []
    for i, seconds in enumerate([0.5, 1.5, 3.0, 6.0]):
        sf.write(root / "audio" / f"utt{i}.wav", speechlike(seconds, seed=i), 16000)
        lines.append(f"utt{i}\thello world number {i}")
    (root / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    return root


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


def test_analyze_writes_plots_and_summary(make_bundle, corpus, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "analysis"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    result = runner.invoke(app, ["analyze", str(make_bundle("global", 2)), str(corpus / "audio"), str(bad),
                                 "-o", str(out)])
    assert result.exit_code == 1  # the bad file is reported, the rest analysed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 4 and len(summary["errors"]) == 1 and "bad.wav" in summary["errors"][0]
    assert set(summary["execution_rate"]) == set(summary["modules"])
    for name in ("gates_heatmap.png", "execution_rate.png", "modules_vs_duration.png", "modules_vs_snr.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
