"""Tests of the recipes (scripts under recipes/, loaded as modules by path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(folder: str, name: str) -> ModuleType:
    """<folder>/<name>.py of the repository (recipes/, benchmarks/) as a module, registered in
    sys.modules (its dataclasses and pickling need it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_recipe(name: str) -> ModuleType:
    """recipes/<name>.py as a module."""
    return load_script("recipes", name)
