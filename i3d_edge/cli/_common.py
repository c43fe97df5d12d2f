"""Shared pieces of the command line: readable help, missing-extra errors, a closed stdout.

Imports only typer (and the standard library) at import time, like the command modules.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

__all__ = ["Command", "closed_stdout", "exit_quietly", "from_field", "help_panel_safe", "missing_extra",
           "with_options"]


_READABLE = {"int": "N", "float": "NUMBER", "str": "TEXT", "path": "PATH", "Path": "PATH"}


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already shows the metavar (AUDIO...)


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None  # a flag takes no value: no "<bool>"
        label = re.sub(r"^list\[(.*)\]$", r"\1", self.display_type(ctx).strip("<>"))
        return _READABLE.get(label, label)


class Command(TyperCommand):
    """A typer command with readable help: ``AUDIO...`` rather than ``{AUDIO}...`` in the usage
    line, ``N`` / ``PATH`` / ``a|b`` rather than ``<int>`` / ``<list[Path]>`` / ``<a|b>`` beside
    options, and nothing beside flags (typer prints ``<bool>``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:  # this command's own parameter objects, made just now
            if type(param) is TyperArgument:
                param.__class__ = _Argument
                if param.metavar is None and param.name:
                    param.metavar = param.name.upper()
            elif type(param) is TyperOption:
                param.__class__ = _Option

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if type(option) is TyperOption:
            option.__class__ = _Option
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [re.sub(r"\{([^{}]*)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


# Top-level module of an optional dependency -> (extra, what it is for).
_EXTRAS = {
    "torch": ("export", "PyTorch"),
    "onnx": ("export", "onnx"),
    "onnxsim": ("export", "onnxsim"),
    "onnxscript": ("export", "onnxscript"),
    "matplotlib": ("plot", "matplotlib"),
    "flashlight": ("lm", "flashlight-text"),
    "ray": ("ray", "Ray"),
    "pyarrow": ("ray", "pyarrow"),
}


def missing_extra(exc: ImportError) -> str | None:
    """The one-line message for an ImportError of an optional dependency, or None (then it is a bug)."""
    root = (exc.name or "").split(".")[0]
    if root not in _EXTRAS:
        return None
    extra, package = _EXTRAS[root]
    return f"this command needs {package}, from the [{extra}] extra: pip install 'i3d-edge[{extra}]'"


def closed_stdout() -> None:
    """stdout's reader went away (``| head``): send what is left to /dev/null so that Python's
    final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


def help_panel_safe(text: str) -> str:
    """Escape ``[...]`` so rich does not eat it as markup (``[plot]`` in a help text)."""
    return text.replace("[", "\\[")


def exit_quietly() -> typer.Exit:
    closed_stdout()
    return typer.Exit(0)


def from_field(cls: type, name: str, *flags: str, **extra: Any) -> Any:
    """A typer.Option whose default and help are those of dataclass field ``cls.name``
    (RuntimeOptions, TrainConfig, ModelConfig): the command line restates neither."""
    import dataclasses

    from ..config import field_help

    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = None if field.default is dataclasses.MISSING else field.default
    extra.setdefault("help", field_help(cls, name) or None)
    return typer.Option(default, *flags, **extra)


def with_options(options: dict[str, tuple[Any, Any]], into: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add shared options to a command: ``options`` maps a parameter name to (its type, its
    typer.Option). The command declares one keyword parameter ``into`` instead, and receives the
    values given (None: not given) there as a dict, so commands that share options declare them once."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != into]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for name, (kind, option) in options.items()]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in options}
            return func(*args, **kwargs, **{into: values})

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        return wrapper

    return decorate
