"""Fixtures of the runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def waveform_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")  # the [import] extra; CI installs it with [dev]
    from i3d_edge.export import export_bundle
    from i3d_edge.models.checkpoint import save_checkpoint
    from i3d_edge.models.hf_import import import_hf_model
    from tests.hf_models import build_hf_model

    root = tmp_path_factory.mktemp("wave")
    build_hf_model("Wav2Vec2ForCTC", False, root / "hf")  # conv strides 5 x 4 x 4 x 4 = 320 samples per frame
    save_checkpoint(root / "ckpt.pt", import_hf_model(root / "hf"))
    export_bundle(root / "ckpt.pt", root / "bundle", simplify=False)
    return root / "bundle"
