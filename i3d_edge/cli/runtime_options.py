"""The Runtime options shared by ``transcribe``, ``eval`` and ``analyze``, declared once: their
defaults and help are :class:`~i3d_edge.runtime.RuntimeOptions`' fields, and RuntimeOptions
checks their ranges (one line on error). A command takes them with ``@runtime_options(...)`` and
receives them as one dict."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from ..runtime.options import DECODERS, PRECISIONS, RuntimeOptions
from ._common import bundle_path, check_conflicts, from_field, with_options

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["open_runtime", "runtime_knobs", "runtime_options"]

Decoder = Enum("Decoder", {name: name for name in DECODERS}, type=str)  # type: ignore[misc]
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]

# name -> (type, option), in the order of the help
OPTIONS: dict[str, tuple[Any, Any]] = {
    "model": (str | None, typer.Option(None, "--model", "-m", metavar="DIR",
                                       help="Bundle directory, or default: the embedded model (the default).")),
    "threshold": (float | None, from_field(RuntimeOptions, "threshold", "--threshold")),
    "max_modules": (int | None, from_field(RuntimeOptions, "max_modules", "--max-modules", metavar="K")),
    "full_depth": (bool, from_field(RuntimeOptions, "full_depth", "--full-depth")),
    "threads": (int | None, from_field(RuntimeOptions, "threads", "--threads")),
    "precision": (Precision | None, from_field(RuntimeOptions, "precision", "--precision")),
    "batch_size": (int, from_field(RuntimeOptions, "batch_size", "--batch-size")),
    "decoder": (Decoder, from_field(RuntimeOptions, "decoder", "--decoder")),
    "lm_weight": (float | None, from_field(RuntimeOptions, "lm_weight", "--lm-weight")),
    "word_score": (float | None, from_field(RuntimeOptions, "word_score", "--word-score")),
    "beam_size": (int | None, from_field(RuntimeOptions, "beam_size", "--beam-size")),
    "edge_silence": (float | None, from_field(RuntimeOptions, "edge_silence", "--edge-silence", metavar="SECONDS")),
}


def runtime_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the shared options ``names`` (all when none); it receives them as ``shared``."""
    return with_options({n: OPTIONS[n] for n in (names or OPTIONS)}, into="shared")


def open_runtime(values: Mapping[str, Any], model: Any = None) -> Runtime:
    """The Runtime of a command's options (``model`` when the command takes it as an argument):
    contradicting options are refused first (``_common.CONFLICTS``), ``default`` is the embedded model."""
    from ..runtime import Runtime

    check_conflicts(values)
    where = values.get("model", model)
    return Runtime(None if where is None else bundle_path(where), **runtime_knobs(values))


def runtime_knobs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The RuntimeOptions among a command's option values (those given; enums by their value)."""
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()
            if k in RuntimeOptions.__dataclass_fields__ and v is not None}
