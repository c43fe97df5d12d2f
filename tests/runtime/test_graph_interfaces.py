"""A graph whose tensor widths do not fit the manifest's model is refused at load, not mid-run."""

from __future__ import annotations

import json
import shutil

import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import sha256_file
from i3d_edge.runtime import Runtime


def test_head_with_wrong_vocabulary_is_refused(make_bundle, tmp_path):
    good, other = make_bundle("global", 2), make_bundle("global", 2, vocab_size=40)
    bundle = tmp_path / "bundle"
    shutil.copytree(good, bundle)
    shutil.copy(other / "fp32" / "head.onnx", bundle / "fp32" / "head.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["fp32/head.onnx"]["sha256"] = sha256_file(bundle / "fp32" / "head.onnx")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="log_probs has width 40"):
        Runtime(bundle)
