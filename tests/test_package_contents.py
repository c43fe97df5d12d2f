"""What ships in the wheel (everything under ``i3d_edge/``) is the product: no development targets,
no path into a development checkout, no application in the package root."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "i3d_edge"

# the package root holds only the shared contracts (README "Layout")
CONTRACTS = {"__init__", "__main__", "audio", "config", "corpus", "ctc", "errors", "extras", "features", "gating",
             "limits", "lm", "module_kinds", "manifest", "scoring", "tokens"}


def test_the_package_root_holds_only_the_contracts():
    assert {p.stem for p in PACKAGE.glob("*.py")} == CONTRACTS
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        {"apps", "assets", "bundle", "cli", "export", "models", "runtime"}


def test_no_development_target_or_checkout_path_ships():
    patterns = {
        "a benchmark target table": re.compile(r"\bTARGETS\b"),
        "a path into the checkout's shared data": re.compile(r"shared[/\"' ,]+(?:/ *)?[\"']?data|ljspeech-dev"),
        "an issue number": re.compile(r"\bissue #\d+"),
    }
    found = [f"{path.relative_to(PACKAGE)}: {what}" for path in sorted(PACKAGE.rglob("*.py"))
             for what, pattern in patterns.items() if pattern.search(path.read_text(encoding="utf-8"))]
    assert found == []
