"""An interrupted export never leaves a half-written bundle.

Covered in test_export.py: a KeyboardInterrupt, an ExportError and an OSError during a fresh export
(staging and created parents removed), a failed ``--force`` re-export (old bundle kept), and
pickled checkpoints refused by ``load_checkpoint`` (models/test_checkpoint.py) and by ``i3d-edge
export`` (test_export.py). Here: Ctrl-C while replacing a bundle (during the export and between the
two renames of the commit), a real SIGINT or SIGTERM to ``i3d-edge export``, and the staging
folders of a killed export removed by the next one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i3d_edge.manifest import MANIFEST_NAME, load_manifest

torch = pytest.importorskip("torch", reason="export needs the [export] extra (torch)")
pytest.importorskip("onnx", reason="export needs the [export] extra (onnx)")

from i3d_edge.export import bundle as bundle_mod  # noqa: E402
from i3d_edge.export import export_bundle  # noqa: E402
from tests.conftest import ROOT, TINY, signal_when, snapshot  # noqa: E402


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.fixture
def existing(make_checkpoint, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A complete bundle at tmp_path/b (global predictor), and its bytes."""
    out = tmp_path / "b"
    export_bundle(make_checkpoint("global", 2, **TINY), out, verify=False)
    return out, snapshot(out)


def test_ctrl_c_during_a_forced_reexport_keeps_the_old_bundle(make_checkpoint, existing, monkeypatch):
    out, before = existing

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_mod, "verify_bundle", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(make_checkpoint("local", 2, **TINY), out, force=True)
    assert snapshot(out) == before and leftovers(out.parent, "b") == []


def test_ctrl_c_between_the_commit_renames_restores_the_old_bundle(make_checkpoint, existing, monkeypatch):
    """The old bundle is moved aside, then the new one is renamed in: an interrupt in between
    must put the old one back, not leave ``out`` missing."""
    out, before = existing
    real_rename = os.rename
    calls: list[tuple[str, str]] = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if ".partial-" in Path(src).name:  # the staging directory moving into place
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(bundle_mod.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(make_checkpoint("local", 2, **TINY), out, force=True, verify=False)
    monkeypatch.undo()
    moved_aside, moved_in, moved_back = calls  # the interrupt did come mid-commit, and was rolled back
    assert moved_aside[0] == "b" and moved_aside[1].startswith(".b.old-") and moved_in[1] == "b"
    assert moved_back == (moved_aside[1], "b")
    assert snapshot(out) == before and leftovers(out.parent, "b") == []
    assert load_manifest(out).predictor == "global"


def _staging_reached(parent: Path, name: str, phase: str) -> bool:
    for staging in parent.glob(f".{name}.partial-*"):
        if phase == "graphs" and any((staging / "fp32").glob("*.onnx")):
            return True  # the first graph is written
        if phase == "verify" and (staging / MANIFEST_NAME).exists():
            return True  # every graph and the manifest are written; verification runs
    return False


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize(("phase", "replace"), [("graphs", False), ("verify", True)])
def test_sigint_to_the_export_command_leaves_nothing_behind(make_checkpoint, tmp_path, phase, replace):
    out = tmp_path / "b"
    before = None
    if replace:
        export_bundle(make_checkpoint("global", 2, **TINY), out, verify=False)
        before = snapshot(out)
    # 8 layers: seconds between the phase being seen and the commit, so a loaded machine still
    # delivers the signal before the export could finish
    args = [sys.executable, "-m", "i3d_edge", "export", str(make_checkpoint("local", 8)), "-o", str(out)]
    code, stdout, stderr = signal_when([*args, *(["--force"] if replace else [])],
                                       lambda: _staging_reached(tmp_path, "b", phase), signal.SIGINT,
                                       what=f"export (waiting for the {phase} phase)")
    assert code == 130 and stderr == "error: interrupted\n" and "exported" not in stdout, stderr
    assert leftovers(tmp_path, "b") == []
    if replace:
        assert snapshot(out) == before
    else:
        assert not out.exists()


def test_the_staging_folders_of_a_killed_export_are_removed_by_the_next(make_checkpoint, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = tmp_path / f".b.partial-{int(dead.stdout)}-abcd1234"
    live = tmp_path / f".b.partial-{os.getpid()}-efgh5678"  # an export still running (this process)
    for folder in (stale, live):
        (folder / "fp32").mkdir(parents=True)
        (folder / "fp32" / "frontend.onnx").write_bytes(np.zeros(1 << 20, np.uint8).tobytes())
    export_bundle(make_checkpoint("global", 2, **TINY), tmp_path / "b", verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", live.name])


@pytest.mark.skipif(os.name != "posix", reason="sends SIGTERM and SIGHUP")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])  # SIGHUP: the terminal of the export was closed
def test_sigterm_during_export_cleans_up_like_sigint(make_checkpoint, tmp_path, sig):
    out = tmp_path / "b"
    args = [sys.executable, "-m", "i3d_edge", "export", str(make_checkpoint("local", 8)), "-o", str(out)]
    code, stdout, stderr = signal_when(
        args, lambda: any(any((s / "fp32").glob("*.onnx")) for s in tmp_path.glob(".b.partial-*")),
        getattr(signal, sig), env={**os.environ, "PYTHONPATH": str(ROOT)}, what="export")
    assert code == 130 and stderr == "error: interrupted\n" and "exported" not in stdout, stderr
    assert list(tmp_path.iterdir()) == []
