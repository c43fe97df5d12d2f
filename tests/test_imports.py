"""The runtime import path never imports torch (the package must work without it installed), and the
package's layers import only downwards, without cycles: ``python -m pytest tests/test_imports.py``
shows the structure (``LAYERS`` and the drawn layer graph below)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# ---------------------------------------------------------------------------- layering
# The package's layers, bottom up: each may import only from the layers before it (and itself).
# core: the contract and shared pieces (config, module_kinds, manifest, features, audio ...), torch-free;
# runtime: numpy + onnxruntime; bundle: torch-free bundle tools (inspection, ONNX wire reading, LM
# attachment, signals); models and export need torch; apps and cli are the front ends.
LAYERS = ("core", "runtime", "bundle", "models", "export", "apps", "cli")
TORCH_FREE = ("core", "runtime", "bundle")
PACKAGE = Path(__file__).resolve().parents[1] / "i3d_edge"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool) -> list[tuple[str, str]]:
    """(module, name) of every import in a module, relative ones resolved: ``from ..config import X``
    in i3d_edge.export.bundle is ("i3d_edge.config", "X"); ``import numpy`` is ("numpy", "")."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = str(node.module)
            if node.level:
                base = ".".join([*here[:len(here) - node.level + 1], *([node.module] if node.module else [])])
            found += [(base, alias.name) for alias in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (top level, in functions and under TYPE_CHECKING alike),
    i3d_edge's own and third-party top-level names; ``from . import app`` in a package's child (the
    CLI's command registration) is not an edge."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        edges = {f"{base}.{item}" if f"{base}.{item}" in modules else base
                 for base, item in _imports(name, path, is_package)}
        graph[name] = edges - {name, name.rsplit(".", 1)[0] if not is_package else name}
    return graph


def layer(module: str) -> str | None:
    """The layer of an i3d_edge module; None for the package facade (``i3d_edge/__init__.py``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in LAYERS:
        return parts[1]
    return "cli" if parts[1] == "__main__" else "core"


def test_no_layer_imports_a_later_layer():
    wrong = [f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
             if b.startswith("i3d_edge.") and layer(a) is not None
             and LAYERS.index(layer(b)) > LAYERS.index(layer(a))]  # type: ignore[arg-type]
    assert wrong == []


def test_the_layer_graph_is_as_drawn():
    """Which layer imports which, exactly: a new dependency between layers shows up here first."""
    edges: dict[str, set[str]] = {}
    for a, targets in import_graph().items():
        for b in targets:
            if b.startswith("i3d_edge.") and layer(a) is not None and layer(a) != layer(b):
                edges.setdefault(layer(a), set()).add(layer(b))  # type: ignore[arg-type]
    assert edges == {
        "runtime": {"core"},
        "bundle": {"core", "runtime"},
        "models": {"core"},
        "export": {"core", "runtime", "bundle", "models"},
        "apps": {"core", "runtime", "models", "export"},
        "cli": {"core", "runtime", "bundle", "models", "export", "apps"},
    }


def test_the_bundle_room_uses_only_the_runtime_public_face():
    """Inspection and LM attachment ask ``i3d_edge.runtime`` (check_bundle, ...), never its modules."""
    reach = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                   if layer(a) == "bundle" and b.startswith("i3d_edge.runtime."))
    assert reach == []


def test_the_facade_gives_only_its_version():
    """Inside the package, ``i3d_edge`` (the facade, which lazily imports the runtime) is imported
    only for ``__version__``."""
    modules = _modules()
    taken = sorted({item for name, (path, is_package) in modules.items() if name != "i3d_edge"
                    for base, item in _imports(name, path, is_package)
                    if base == "i3d_edge" and f"i3d_edge.{item}" not in modules})
    assert taken == ["__version__"]


def test_no_module_imports_another_modules_private_names():
    """``from .audio import _rate`` would tie a module to another's internals: what modules share has a
    public name. (A package's private submodules, ``from ._common import Command``, are fine.)"""
    modules = _modules()
    taken = sorted(f"{name} <- {base}.{item}" for name, (path, is_package) in modules.items()
                   for base, item in _imports(name, path, is_package)
                   if base.split(".")[0] == "i3d_edge" and item.startswith("_") and not item.startswith("__")
                   and f"{base}.{item}" not in modules)
    assert taken == []


def test_no_import_cycles():
    graph = {a: {b for b in targets if b in _modules()} for a, targets in import_graph().items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting[visiting.index(module):], module])
        visiting.append(module)
        for target in sorted(graph[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_torch_free_layers_never_import_torch():
    """Not even lazily: the runtime, the bundle room and the contract work without torch installed."""
    reach = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                   if layer(a) in TORCH_FREE and b.split(".")[0] == "torch")
    assert reach == []


def test_bundle_room_and_runtime_import_without_torch():
    proc = run_blocked("import i3d_edge.bundle.inspection, i3d_edge.bundle.language_model, i3d_edge.bundle.onnx_wire, "
                       "i3d_edge.bundle.signals, i3d_edge.runtime.runtime\nassert 'torch' not in sys.modules\n"
                       "print('ok')")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
