"""Exported bundles are readable by everyone the umask allows (files and folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TINY

pytest.importorskip("torch", reason="export needs the [export] extra (torch)")
pytest.importorskip("onnx", reason="export needs the [export] extra (onnx)")


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777) for p in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_bundles_are_readable_by_all_as_the_umask_allows(make_checkpoint, tmp_path, umask, file_mode, dir_mode):
    from i3d_edge.export import export_bundle

    saved = os.umask(umask)
    try:
        export_bundle(make_checkpoint("global", 2, **TINY), tmp_path / "b", verify=False)
    finally:
        os.umask(saved)
    assert _modes(tmp_path / "b") == {("file", file_mode), ("dir", dir_mode)}
