"""The Runtime options shared by ``transcribe``, ``eval`` and ``analyze``, declared once: their
defaults and help are :class:`~i3d_edge.runtime.RuntimeOptions`' fields, and RuntimeOptions
checks their ranges (one line on error)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import typer

from ..runtime.options import DECODERS, PRECISIONS, RuntimeOptions
from ._common import from_field

__all__ = ["Decoder", "Precision", "runtime_knobs"]

Decoder = Enum("Decoder", {name: name for name in DECODERS}, type=str)  # type: ignore[misc]
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]

MODEL = typer.Option(None, "--model", "-m", metavar="DIR", help="Bundle directory (default: the embedded model).")
THRESHOLD = from_field(RuntimeOptions, "threshold", "--threshold")
MAX_MODULES = from_field(RuntimeOptions, "max_modules", "--max-modules", metavar="K")
FULL_DEPTH = from_field(RuntimeOptions, "full_depth", "--full-depth")
THREADS = from_field(RuntimeOptions, "threads", "--threads")
PRECISION = from_field(RuntimeOptions, "precision", "--precision")
BATCH_SIZE = from_field(RuntimeOptions, "batch_size", "--batch-size")
DECODER = from_field(RuntimeOptions, "decoder", "--decoder")
LM_WEIGHT = from_field(RuntimeOptions, "lm_weight", "--lm-weight")
WORD_SCORE = from_field(RuntimeOptions, "word_score", "--word-score")
BEAM_SIZE = from_field(RuntimeOptions, "beam_size", "--beam-size")


def runtime_knobs(params: Mapping[str, Any]) -> dict[str, Any]:
    """The RuntimeOptions among a command's parsed parameters (``ctx.params``), enums as their
    values; options left at None keep RuntimeOptions' default."""
    names = RuntimeOptions.__dataclass_fields__
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in params.items() if k in names and v is not None}
