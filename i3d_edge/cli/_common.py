"""Shared pieces of the command line: readable help, missing-extra errors, a closed stdout.

Imports only typer (and the standard library) at import time, like the command modules.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["CONFLICTS", "Command", "Conflict", "Group", "bundle_path", "check_conflicts", "closed_stdout",
           "exit_quietly", "from_field", "help_panel_safe", "missing_extra", "usage_error", "with_options"]


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
        label = re.sub(r"^(int|float) range.*$", r"\1", label)  # "int range [x>=1]": N, as any int
        return _READABLE.get(label, label)

    def _get_number_range_help_str(self) -> str | None:
        return None  # no "[x>=1]" beside the type: a value out of range is one clear error line


USAGE_EXIT = 1  # every error exits 1, usage errors too (130 on Ctrl-C); 0 is success
# click's UsageError (unknown option, bad value, missing argument), from the click typer runs on
# (its own copy since typer 0.25): the class BadParameter derives from, found at run time, so its static
# type is Any (it has click's ``format_message``).
UsageError: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def usage_error(ctx: Any, message: str) -> typer.Exit:
    """Print a usage error as one ``error:`` line naming the command's help, and return the Exit
    (status USAGE_EXIT) to raise: the same form as every other error of the command line."""
    where = ctx.command_path if ctx is not None else "i3d-edge"
    text = " ".join(message.split()).rstrip(".")  # click's messages may span lines
    typer.echo(f"error: {text[:1].lower() + text[1:]} (see '{where} --help')", err=True)
    return typer.Exit(USAGE_EXIT)


class Group(TyperGroup):
    """The ``i3d-edge`` group: an unknown command or option is one ``error:`` line, exit 1; no
    command at all prints the help (exit 0)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            raise usage_error(ctx, exc.format_message()) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            raise usage_error(ctx, exc.format_message()) from None


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

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """A usage error (unknown option, bad value, missing argument) is one ``error:`` line, exit 1,
        not typer's framed box with exit 2."""
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            raise usage_error(ctx, exc.format_message()) from None


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != []


@dataclass(frozen=True)
class Conflict:
    """Two options that contradict each other: given together (``clash``), the command refuses."""

    first: str  # parameter names, as the command (and its shared options) declare them
    second: str
    clash: Callable[[Any, Any], bool]  # (first's value, second's value) -> they contradict
    message: str | Callable[[Any, Any], str]  # the error, without "error: " (or made from the two values)


def _suffix_clash(output: Any, formats: Any) -> bool:
    from .outputs import format_of_suffix

    named = format_of_suffix(output) if output is not None else None
    return named is not None and formats is not None and named not in formats


def _no_cue_format(max_line_chars: Any, formats: Any) -> bool:
    from .outputs import CUE_FORMATS

    return max_line_chars is not None and formats is not None and not any(f in CUE_FORMATS for f in formats)


# Every pair of options that contradict each other, for every command (a row applies to a command
# that has both). Checked before any work starts; each row is one test.
CONFLICTS = (
    Conflict("full_depth", "max_modules", lambda a, b: _given(a) and _given(b),
             "--full-depth runs every module and --max-modules K caps them: give one"),
    Conflict("full_depth", "threshold", lambda a, b: _given(a) and _given(b),
             "--full-depth ignores the gates, so --threshold would change nothing: give one"),
    Conflict("decoder", "lm_weight", lambda a, b: a == "greedy" and _given(b),
             "--lm-weight weighs the language model, which --decoder greedy does not use"),
    Conflict("decoder", "word_score", lambda a, b: a == "greedy" and _given(b),
             "--word-score is a language-model setting, which --decoder greedy does not use"),
    Conflict("decoder", "beam_size", lambda a, b: a == "greedy" and _given(b),
             "--beam-size sizes the language-model beam search, which --decoder greedy does not run"),
    Conflict("output_dir", "output", lambda a, b: _given(a) and _given(b),
             "give --output-dir DIR or -o FILE, not both"),
    Conflict("force", "skip_existing", lambda a, b: _given(a) and _given(b),
             "give --force or --skip-existing, not both"),
    Conflict("output", "formats", _suffix_clash,
             lambda output, formats: f"-o {output} is named as a {output.suffix.lower()[1:]} file but --format is "
                                     f"{','.join(f.value for f in formats)}: drop --format (the suffix picks the "
                                     "format) or name the file to match"),
    Conflict("max_line_chars", "formats", _no_cue_format,
             "--max-line-chars shapes subtitle lines: give it with --format srt, vtt or tsv"),
    Conflict("ray_address", "output", lambda a, b: _given(a) and _given(b),
             "--ray writes one file per input into --output-dir DIR, not -o FILE: give --output-dir"),
)


def check_conflicts(values: Mapping[str, Any]) -> None:
    """Refuse the first pair of CONFLICTS whose options ``values`` (parameter name -> value; enums by
    their value) holds and that contradict each other: one ``error:`` line, exit 1."""
    plain = {k: getattr(v, "value", v) for k, v in values.items()}
    for row in CONFLICTS:
        first, second = plain.get(row.first), plain.get(row.second)
        if row.first in plain and row.second in plain and row.clash(first, second):
            message = row.message if isinstance(row.message, str) else row.message(first, second)
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(USAGE_EXIT)


def missing_extra(exc: ImportError) -> str | None:
    """The one-line message for an ImportError of an optional dependency, or None (then it is a bug)."""
    from ..extras import MODULES, install_hint

    root = (exc.name or "").split(".")[0]
    if root not in MODULES:
        return None
    extra, package = MODULES[root]
    return f"this command needs {package}, from the [{extra}] extra: {install_hint(extra)}"


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


def bundle_path(value: str | os.PathLike[str], *, writing: bool = False) -> Path:
    """Where a command reads (or, ``writing``, changes) a bundle: ``default`` is the embedded model
    unless a directory of that name exists, as for ``inspect``. A file is refused with what to do
    (a checkpoint is exported first); the embedded model is never written into."""
    from ..errors import BundleError
    from ..runtime import DEFAULT_BUNDLE

    path = Path(value)
    if os.fspath(value) == "default" and not path.exists():
        if not (DEFAULT_BUNDLE / "manifest.json").is_file():
            raise BundleError("no default model is embedded in this i3d-edge install: give a bundle directory")
        path = DEFAULT_BUNDLE
    if path.is_file():
        if path.name == "manifest.json":
            raise BundleError(f"{path}: give the bundle directory that holds the manifest ({path.parent})")
        raise BundleError(f"{path}: a file, not a bundle directory; if it is a checkpoint, make a bundle of it "
                          f"first: i3d-edge export {path} -o bundle/")
    if writing and path.resolve() == DEFAULT_BUNDLE.resolve():
        raise BundleError(f"the embedded default model is part of the installed package; copy it and change the "
                          f"copy: cp -r {DEFAULT_BUNDLE} my-bundle && i3d-edge lm my-bundle ...")
    return path
