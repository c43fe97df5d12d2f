"""The embedded default model loads with no arguments, verifies, and transcribes the samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from i3d_edge.runtime.runtime import DEFAULT_BUNDLE

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

pytestmark = pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(),
                                reason="no default model embedded in this checkout")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_default_model_transcribes_samples_without_torch(block_torch, precision):
    from i3d_edge import Runtime

    rt = Runtime(precision=precision)
    assert rt.modules_total == 24 and rt.manifest.predictor == "global"
    for wav in sorted(SAMPLES.glob("*.wav")):
        result = rt.transcribe(wav)
        assert result.text.strip(), wav
        assert 0 < result.modules_executed <= result.modules_total
        assert all(0 <= t.start < t.end <= result.duration + 0.05 for t in result.tokens)
