"""Bundles the runtime must refuse, each with one line naming the file and the cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import MANIFEST_NAME, sha256_file
from i3d_edge.runtime import Runtime
from tests.conftest import speechlike


@pytest.fixture
def bundle(make_bundle, tmp_path) -> Path:
    """A private copy of a small global-gate bundle, free to damage."""
    return Path(shutil.copytree(make_bundle("global", 2), tmp_path / "bundle"))


def graph(bundle: Path, key: str) -> Path:
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    return bundle / manifest["variants"]["fp32"]["graphs"][key]


def refused(match: str, *args, **kwargs) -> str:
    with pytest.raises(BundleError, match=match) as info:
        Runtime(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_tampered_graph_is_refused_at_load(bundle):
    path = graph(bundle, "layer01.ffn")
    with open(path, "ab") as fh:
        fh.write(b"\0")
    assert refused("SHA-256 mismatch", bundle).startswith(str(path))


def test_missing_graph_is_refused(bundle):
    path = graph(bundle, "layer00.mha")
    path.unlink()
    assert refused("missing bundle file", bundle).startswith(str(path))


def test_lazy_mode_verifies_a_module_on_first_use(bundle):
    rt = Runtime(bundle, lazy=True, full_depth=True)  # loads frontend, gate and head only
    with open(graph(bundle, "layer01.mha"), "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="SHA-256 mismatch"):
        rt.transcribe(speechlike(1.0), 16000)


def test_graph_with_the_wrong_interface_is_refused(bundle):
    """A graph whose hash is right but whose inputs are not its role's (an MHA graph posing as an FFN)."""
    ffn, mha = graph(bundle, "layer00.ffn"), graph(bundle, "layer00.mha")
    shutil.copyfile(mha, ffn)
    manifest_path = bundle / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    rel = ffn.relative_to(bundle).as_posix()
    manifest["files"][rel] = {"sha256": sha256_file(ffn), "bytes": ffn.stat().st_size}
    manifest_path.write_text(json.dumps(manifest))
    refused("does not match the manifest contract for 'ffn'", bundle)


def test_unknown_manifest_version_and_missing_manifest(bundle, tmp_path):
    manifest_path = bundle / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    refused("unsupported bundle version", bundle)
    manifest_path.unlink()
    refused("missing", bundle)
    refused("no such bundle directory", tmp_path / "nowhere")


def test_a_good_copy_still_loads(bundle, make_bundle):
    a = Runtime(bundle).transcribe(speechlike(1.0), 16000)
    b = Runtime(make_bundle("global", 2)).transcribe(speechlike(1.0), 16000)
    assert a.text == b.text and np.allclose(list(a.gate_probs.values()), list(b.gate_probs.values()))
