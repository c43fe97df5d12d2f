"""Bundle completion without torch: a monolithic graph composed in the manifest's module order, for
every architecture's layer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="composing graphs needs the [export] extra (onnx)")

import onnxruntime as ort

from i3d_edge.export.compose import complete_bundle
from i3d_edge.manifest import load_manifest
from i3d_edge.runtime import Runtime
from i3d_edge.runtime.sessions import session_options


@pytest.mark.parametrize("arch", ["conformer", "conformer-macaron"])
def test_composed_monolithic_graph_runs_every_kind_in_order(make_bundle, tmp_path, arch):
    """The composed graph chains the frontend, every module in the manifest's order (attention,
    convolution, feed-forward ...) and the head: it gives the runtime's full-depth log-probs."""
    done = complete_bundle(make_bundle("none", 2, arch=arch), tmp_path / "derived", [])
    manifest = load_manifest(done)
    feats = np.random.default_rng(0).standard_normal((2, 300, manifest.model_config.n_mels)).astype(np.float32)
    lens = np.array([300, 200], dtype=np.int64)
    graph = done / manifest.variant("fp32").graphs["monolithic"]
    log_probs, out_lens = ort.InferenceSession(str(graph), session_options(1)).run(
        None, {"features": feats, "features_lens": lens})
    ref = Runtime(done, full_depth=True).forward(feats, lens)
    np.testing.assert_array_equal(out_lens, ref.lens)
    for row, n in enumerate(ref.lens.tolist()):
        np.testing.assert_allclose(log_probs[row, :n], ref.log_probs[row, :n], atol=1e-4)
