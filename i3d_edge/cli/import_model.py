"""``i3d-edge import``: a local Hugging Face CTC model directory -> an i3d-edge checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, handle_errors
from ._common import Command


@app.command("import", cls=Command)
@handle_errors
def import_command(
    source: Path = typer.Argument(..., help="Hugging Face model directory (config.json, model.safetensors or "
                                            "pytorch_model.bin, vocab.json) of a Wav2Vec2/Hubert/Data2VecAudio "
                                            "ForCTC model."),
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (ckpt.pt)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the gate predictor's hidden layer."),
) -> None:
    """Import a pretrained wav2vec2 / HuBERT / data2vec-audio CTC model, with a global gate
    predictor that opens every gate (train it with `i3d-edge train --init`)."""
    from ..models.checkpoint import save_checkpoint
    from ..models.hf_import import import_hf_model

    ckpt = import_hf_model(source, seed=seed)
    save_checkpoint(output, ckpt)
    cfg, info = ckpt.model_config, ckpt.train_state["imported_from"]
    typer.echo(f"wrote {output}: {info['class']} ({cfg.layout}), {cfg.n_layers} layers, d_model {cfg.d_model}, "
               f"{len(ckpt.tokens)} tokens, {info['parameters'] / 1e6:.2f}M parameters; every gate open")
