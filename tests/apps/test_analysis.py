"""``i3d-edge analyze`` and its SNR estimate, on random-weight bundles and generated audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from i3d_edge.apps.analysis import estimate_snr_db, kind_colors
from i3d_edge.cli import app
from i3d_edge.config import ModelConfig
from tests.conftest import speechlike

runner = CliRunner()


def test_snr_estimate_orders_clean_above_noisy():
    rng = np.random.default_rng(0)
    clean = speechlike(3.0)
    clean[:16000] *= 0.001  # a quiet stretch gives the noise floor
    noisy = clean + 0.05 * rng.standard_normal(clean.size).astype(np.float32)
    assert estimate_snr_db(clean, 16000) > estimate_snr_db(noisy, 16000) + 10


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


def test_the_execution_rate_plot_colours_each_module_kind():
    """Kinds come from the module-kind table, so a Conformer's convolution and macaron modules get their own
    colours (and labels) instead of being painted as feed-forward."""
    assert kind_colors(ModelConfig(n_layers=2).module_names) == {"mha": "blue", "ffn": "orange"}
    assert kind_colors(ModelConfig(n_layers=2, arch="conformer").module_names) == {
        "mha": "blue", "conv": "orange", "ffn": "green"}
    assert kind_colors(ModelConfig(n_layers=2, arch="conformer-macaron").module_names) == {
        "ffn_pre": "blue", "mha": "orange", "conv": "green", "ffn_post": "red"}
