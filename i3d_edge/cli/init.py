"""``i3d-edge init``: write a randomly initialised checkpoint of any size."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import ModelConfig
from ..module_kinds import ARCHITECTURES
from . import app, handle_errors
from ._common import Command, from_field


@app.command("init", cls=Command)
@handle_errors
def init_command(
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (ckpt.pt)."),
    layers: int = typer.Option(12, "--layers", help="Encoder layers N (2N gated modules)."),
    d_model: int = typer.Option(192, "--d-model", help="Encoder width."),
    heads: int = typer.Option(4, "--heads", help="Attention heads."),
    d_ff: int = typer.Option(0, "--d-ff", help="FFN hidden size (0: 4 x d_model)."),
    gates: str = typer.Option("global", "--gates", help="Gate predictor: global, local or none."),
    arch: str = from_field(ModelConfig, "arch", "--arch", metavar="|".join(ARCHITECTURES)),
    depthwise_kernel: int = from_field(ModelConfig, "depthwise_kernel", "--depthwise-kernel"),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    open_gates: bool = typer.Option(
        False, "--open-gates", help="Initialise gates open, as for training (default: random gate decisions)."),
) -> None:
    """Write a randomly initialised I3D checkpoint (for tests, benchmarks or training from scratch)."""
    from ..models.checkpoint import random_checkpoint, save_checkpoint

    cfg = ModelConfig(n_layers=layers, d_model=d_model, n_heads=heads, d_ff=d_ff or 4 * d_model,
                      gates=gates, arch=arch, depthwise_kernel=depthwise_kernel)  # type: ignore[arg-type]
    ckpt = random_checkpoint(cfg, seed=seed, diverse_gates=not open_gates)
    save_checkpoint(output, ckpt)
    n_params = sum(v.numel() for v in ckpt.state_dict.values())
    typer.echo(f"wrote {output}: {arch}, {layers} layers, d_model {d_model}, gates {gates}, "
               f"{n_params / 1e6:.2f}M parameters")
