"""The README's "Deploy your own model" lines work as written.

``scripts/readme_deploy.py`` pulls the commands out of the README's bash block and runs them one by
one in a fresh work folder, with a tiny random model saved by ``transformers`` into a Hugging Face
cache under the README's model id (``HF_HUB_OFFLINE=1``). Here it runs in the test environment
(the install line is checked to be the install command of the [import] extra instead of run, and
``--max-minutes`` is shortened); ``--fresh`` runs all of it in a new virtual environment.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")

from i3d_edge.extras import install_command

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("readme_deploy", ROOT / "scripts" / "readme_deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_install_line_is_the_import_extra() -> None:
    lines = _script().readme_lines(ROOT / "README.md")
    assert lines[0] == install_command("import")
    assert [ln.split()[1] for ln in lines[1:]] == ["import", "train", "export", "inspect", "transcribe"]
    assert "--max-minutes" in lines[2]  # the gate training ends


@pytest.mark.slow
def test_deploy_lines_run_as_written(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_deploy.py"), "--work", str(tmp_path / "w"),
                           "--minutes", "0.05"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = json.loads((tmp_path / "w" / "readme_deploy.json").read_text())
    assert [r["line"].split()[1] for r in runs] == ["import", "train", "export", "inspect", "transcribe"]
    assert all(r["rc"] == 0 for r in runs)
    assert "every gate open" in proc.stdout and "facebook/wav2vec2-base-960h at aaaaaaaaaaaa" in proc.stdout
    assert "at threshold 0.5 it runs" in proc.stdout and "at full depth CER" in proc.stdout  # what gates learned
    final = json.loads((tmp_path / "w" / "run" / "final.json").read_text())
    assert 0.0 <= final["executed_fraction"] <= 1.0 and final["threshold"] == 0.5
    assert (tmp_path / "w" / "my_bundle" / "int8").is_dir()
