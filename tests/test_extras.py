"""Install hints: every missing-package message and the README name the same, working commands.

i3d-edge is installed from its source folder (``pip install '.[extra]'``; the distribution is on no
index), and an extra that pulls PyTorch is installed after the CPU build's pin.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from i3d_edge.cli._common import missing_extra
from i3d_edge.extras import EXTRAS, MODULES, TORCH_PIN, install_command, install_hint

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pulls_torch(extra: str, seen: tuple[str, ...] = ()) -> bool:
    deps = PYPROJECT["project"]["optional-dependencies"][extra]
    for dep in deps:
        name = re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0]
        if name == "torch":
            return True
        inner = re.fullmatch(r"i3d-edge\[(.*)\]", dep)
        if inner and any(_pulls_torch(e.strip(), (*seen, extra)) for e in inner.group(1).split(",")
                         if e.strip() not in seen):
            return True
    return False


def _readme_installs() -> list[str]:
    """Every pip install command in the README (a line may chain several with &&)."""
    lines = re.findall(r"pip install [^`\n]*", README)
    return [part.strip() for line in lines for part in line.split("&&") if part.strip().startswith("pip install")]


def test_extras_are_the_pyproject_ones_and_torch_is_known() -> None:
    assert set(EXTRAS) <= set(PYPROJECT["project"]["optional-dependencies"])
    assert {extra: _pulls_torch(extra) for extra in EXTRAS} == EXTRAS
    assert _pulls_torch("dev")


def test_install_commands() -> None:
    assert install_command("lm") == "pip install '.[lm]'"
    assert install_command("import") == f"pip install {TORCH_PIN} && pip install '.[import]'"
    assert install_hint("plot") == "pip install '.[plot]' (in the i3d-edge source folder)"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_missing_module_messages_name_the_install_command(module: str) -> None:
    extra, package = MODULES[module]
    message = missing_extra(ModuleNotFoundError(f"No module named '{module}'", name=module))
    assert message == f"this command needs {package}, from the [{extra}] extra: {install_hint(extra)}"


def test_readme_installs_are_the_commands_of_the_hints() -> None:
    installs = _readme_installs()
    named = {m.group(1) for cmd in installs if (m := re.search(r"\.\[([\w,]+)\]", cmd))}
    assert named == {"lm", "dev", "export", "import", "live", "av", "ray"}  # what the README sets up
    for cmd in installs:
        assert "i3d-edge[" not in cmd  # the distribution is on no index: '.[extra]' in the source folder
        m = re.search(r"\.\[(\w+)\]", cmd)
        if m and m.group(1) in EXTRAS:
            assert cmd == f"pip install '.[{m.group(1)}]'"
    for line in re.findall(r"pip install [^`\n]*", README):  # a command that pulls torch pins it first
        extras = re.findall(r"\.\[(\w+)\]", line)
        if any(_pulls_torch(e) for e in extras):
            assert line.startswith(f"pip install {TORCH_PIN} && pip install "), line
    for extra in ("export", "import", "lm"):
        assert install_command(extra) in README
