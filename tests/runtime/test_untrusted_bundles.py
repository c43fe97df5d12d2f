"""Tampered bundles are refused at load, with one line from the API and the CLI.

test_damaged_bundles.py refuses a missing graph, a SHA-256 mismatch, an unknown version and a copied
graph through the API (and cli/test_transcribe.py a SHA-256 mismatch through the CLI); here the CLI
gets those too, and both get the escapes (``../``, absolute paths, symlinks), graphs swapped with
their hashes fixed up, and manifests that lie about the model.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import i3d_edge.cli.transcribe  # noqa: F401  (registers the command)
from i3d_edge.cli import app
from i3d_edge.errors import BundleError
from i3d_edge.manifest import MANIFEST_NAME, sha256_file
from i3d_edge.runtime import Runtime
from tests.conftest import TINY, manifest_json, save_manifest_json, speechlike


def _graph(bundle: Path, key: str) -> Path:
    return bundle / manifest_json(bundle)["variants"]["fp32"]["graphs"][key]


def _point_head_at(bundle: Path, rel: str, target: Path) -> None:
    """List ``rel`` (with target's true hash) and make it the head graph: only path checks can refuse it."""
    shutil.copyfile(_graph(bundle, "head"), target)
    data = manifest_json(bundle)
    data["files"][rel] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
    data["variants"]["fp32"]["graphs"]["head"] = rel
    save_manifest_json(bundle, data)


def _swap(bundle: Path, a: str, b: str) -> None:
    """Swap two graph files and fix up both hashes: only the interface check can tell."""
    pa, pb = _graph(bundle, a), _graph(bundle, b)
    tmp = pa.with_suffix(".swap")
    pa.rename(tmp)
    pb.rename(pa)
    tmp.rename(pb)
    data = manifest_json(bundle)
    for path in (pa, pb):
        data["files"][path.relative_to(bundle).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    save_manifest_json(bundle, data)


def _edit(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def apply(bundle: Path, outside: Path) -> None:
        data = manifest_json(bundle)
        change(data)
        save_manifest_json(bundle, data)

    return apply


def _missing_graph(bundle: Path, outside: Path) -> None:
    _graph(bundle, "layer00.mha").unlink()


def _dotdot(bundle: Path, outside: Path) -> None:
    _point_head_at(bundle, "../x.onnx", bundle.parent / "x.onnx")


def _dotdot_inside(bundle: Path, outside: Path) -> None:
    _point_head_at(bundle, "fp32/../../x.onnx", bundle.parent / "x.onnx")


def _absolute(bundle: Path, outside: Path) -> None:
    _point_head_at(bundle, str(outside / "x.onnx"), outside / "x.onnx")


def _symlinked_graph(bundle: Path, outside: Path) -> None:
    head = _graph(bundle, "head")
    shutil.copyfile(head, outside / "head.onnx")  # same bytes: the hash alone would pass
    head.unlink()
    head.symlink_to(outside / "head.onnx")


def _symlinked_directory(bundle: Path, outside: Path) -> None:
    shutil.copytree(bundle / "fp32", outside / "fp32")
    shutil.rmtree(bundle / "fp32")
    (bundle / "fp32").symlink_to(outside / "fp32", target_is_directory=True)


def _symlinked_manifest(bundle: Path, outside: Path) -> None:
    shutil.copyfile(bundle / MANIFEST_NAME, outside / MANIFEST_NAME)
    (bundle / MANIFEST_NAME).unlink()
    (bundle / MANIFEST_NAME).symlink_to(outside / MANIFEST_NAME)


def _unloadable_graph(bundle: Path, outside: Path) -> None:
    path = _graph(bundle, "layer01.ffn")
    path.write_bytes(np.random.default_rng(3).bytes(2048))
    data = manifest_json(bundle)
    data["files"]["fp32/layer01.ffn.onnx"] = {"sha256": sha256_file(path), "bytes": 2048}
    save_manifest_json(bundle, data)


def _deeply_nested(bundle: Path, outside: Path) -> None:
    (bundle / MANIFEST_NAME).write_text("[" * 100_000 + "]" * 100_000)


def _not_json(bundle: Path, outside: Path) -> None:
    (bundle / MANIFEST_NAME).write_bytes(b'{"format": "i3d-edge-bundle", \xff')


def _version(data: dict) -> None:
    data["version"] = 2


def _tokens(data: dict) -> None:
    data["tokens"] = data["tokens"][:5]  # the head still emits vocab_size classes


def _mean(data: dict) -> None:
    data["feature_config"]["mean"] = ["zero"] * 80


def _nul(data: dict) -> None:
    data["files"]["fp32/head\0.onnx"] = data["files"]["fp32/head.onnx"]


# case -> (damage, fragment of the one-line message, also checked through the API here)
CASES: dict[str, tuple[Callable[[Path, Path], None], str, bool]] = {
    "missing_graph": (_missing_graph, "missing bundle file", False),
    "unknown_version": (_edit(_version), "unsupported bundle version 2", False),
    "dotdot": (_dotdot, "escapes the bundle", True),
    "dotdot_inside": (_dotdot_inside, "escapes the bundle", True),
    "absolute": (_absolute, "escapes the bundle", True),
    "symlinked_graph": (_symlinked_graph, "symlinks are not allowed", True),
    "symlinked_directory": (_symlinked_directory, "symlinks are not allowed", True),
    "symlinked_manifest": (_symlinked_manifest, "symlinks are not allowed", True),
    "swapped_mha_ffn": (lambda b, o: _swap(b, "layer00.mha", "layer00.ffn"),
                        "does not match the manifest contract", True),
    "swapped_frontend_head": (lambda b, o: _swap(b, "frontend", "head"), "does not match the manifest contract", True),
    "unloadable_graph": (_unloadable_graph, "onnxruntime cannot load this graph", True),
    "not_json": (_not_json, "unreadable manifest", True),
    "deeply_nested": (_deeply_nested, "nested too deeply", True),
    "tokens_vs_vocab": (_edit(_tokens), "5 tokens but vocab_size 29", True),
    "non_numeric_mean": (_edit(_mean), "invalid model or feature config", True),
    "nul_in_path": (_edit(_nul), "not a valid file name", True),
}


@pytest.fixture
def damaged(make_bundle, tmp_path, request) -> tuple[Path, str]:
    """A private copy of the tiny bundle with this test's damage; returns (bundle, expected fragment)."""
    bundle = Path(shutil.copytree(make_bundle("global", 2, **TINY), tmp_path / "bundle"))
    outside = tmp_path / "outside"
    outside.mkdir()
    damage, fragment, _ = CASES[request.param]
    damage(bundle, outside)
    return bundle, fragment


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundle-audio") / "a.wav"
    sf.write(path, speechlike(1.0, seed=2), 16000)
    return path


@pytest.mark.parametrize("damaged", [c for c, (_, _, api) in CASES.items() if api], indirect=True)
def test_api_refuses_at_load(damaged):
    bundle, fragment = damaged
    with pytest.raises(BundleError) as info:
        Runtime(bundle)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message and fragment in message and str(bundle.resolve()) in message


@pytest.mark.parametrize("damaged", list(CASES), indirect=True)
def test_cli_refuses_in_one_line(damaged, wav):
    bundle, fragment = damaged
    result = CliRunner().invoke(app, ["transcribe", str(wav), "--model", str(bundle)])
    assert "Traceback" not in result.output
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_a_symlink_to_the_whole_bundle_is_fine(make_bundle, tmp_path, wav):
    """Only links inside the bundle are refused: /opt/model -> /data/bundle-v3 is an ordinary install."""
    bundle = make_bundle("global", 2, **TINY)
    link = tmp_path / "model"
    link.symlink_to(bundle, target_is_directory=True)
    assert Runtime(link).transcribe(wav).text == Runtime(bundle).transcribe(wav).text
    assert os.path.islink(link)
