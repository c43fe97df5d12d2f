"""The runtime import path never imports torch (the package must work without it installed)."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch blocked")
sys.meta_path.insert(0, Block())
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120)


def test_package_and_runtime_import_without_torch():
    proc = run_blocked(
        "import i3d_edge\nfrom i3d_edge import Runtime, Transcript\n"
        "import i3d_edge.runtime, i3d_edge.audio, i3d_edge.features, i3d_edge.apps.evaluation\n"
        "assert 'torch' not in sys.modules and 'ray' not in sys.modules\nprint('ok')")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_package_import_is_light():
    proc = subprocess.run([sys.executable, "-c", "import i3d_edge, sys; print(sorted(m for m in sys.modules "
                           "if m.split('.')[0] in ('torch', 'onnxruntime', 'onnx', 'soundfile', 'ray')))"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_cli_help_without_torch():
    proc = run_blocked("from i3d_edge.cli import main\nsys.argv = ['i3d-edge', '--help']\nmain()")
    assert proc.returncode == 0, proc.stderr
    for command in ("transcribe", "export", "inspect", "init", "eval", "train", "lm"):
        assert command in proc.stdout
