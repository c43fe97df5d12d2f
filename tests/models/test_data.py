"""Training features (i3d_edge/models/data.py): the audio is read as the runtime reads it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from i3d_edge.config import FeatureConfig
from i3d_edge.features import log_mel, num_frames, with_edge_silence

pytest.importorskip("torch", reason="training needs the [export] extra")

from i3d_edge.models.data import FeatureSet


def test_training_features_carry_the_edge_silence_the_runtime_adds(corpus, tmp_path):
    plain = FeatureSet.build([corpus], FeatureConfig(), tmp_path / "plain", jobs=1)
    edge_cfg = FeatureConfig(edge_silence=0.1)
    edge = FeatureSet.build([corpus], edge_cfg, tmp_path / "edge", jobs=1)
    assert edge.ids == plain.ids and len(edge) == 6
    for i, uid in enumerate(edge.ids):
        audio, rate = sf.read(corpus / "audio" / f"{uid}.wav", dtype="float32")
        assert rate == 16000
        assert plain.lengths[i] == num_frames(audio.size, FeatureConfig())
        assert edge.lengths[i] == num_frames(audio.size + 2 * 1600, edge_cfg)  # 0.1 s each side
        want = log_mel(with_edge_silence(audio, edge_cfg), edge_cfg).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(edge.utterance(i), want)
