"""``i3d-edge init``: write a randomly initialised checkpoint of any size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..config import ModelConfig
from . import app, handle_errors
from ._common import Command, with_options
from .model_options import MODEL_OPTIONS


@app.command("init", cls=Command)
@handle_errors
@with_options({k: v for k, v in MODEL_OPTIONS.items() if k != "d_ff"}, into="model")
def init_command(
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (ckpt.pt)."),
    d_ff: int = typer.Option(0, "--d-ff", help="FFN hidden size (0: 4 x d_model)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    open_gates: bool = typer.Option(
        False, "--open-gates", help="Initialise gates open, as for training (default: random gate decisions)."),
    model: dict[str, Any] | None = None,  # the ModelConfig options (model_options.MODEL_OPTIONS)
) -> None:
    """Write a randomly initialised I3D checkpoint (for tests, benchmarks or training from scratch)."""
    from ..models.checkpoint import random_checkpoint, save_checkpoint

    values = model or {}
    cfg = ModelConfig(**values, d_ff=d_ff or 4 * values["d_model"])
    ckpt = random_checkpoint(cfg, seed=seed, diverse_gates=not open_gates)
    save_checkpoint(output, ckpt)
    n_params = sum(v.numel() for v in ckpt.state_dict.values())
    typer.echo(f"wrote {output}: {cfg.arch}, {cfg.n_layers} layers, d_model {cfg.d_model}, gates {cfg.gates}, "
               f"{n_params / 1e6:.2f}M parameters")
