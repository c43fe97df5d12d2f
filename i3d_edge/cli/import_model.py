"""``i3d-edge import``: a Hugging Face CTC model (directory or Hub model id) -> an i3d-edge checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, fail, handle_errors
from ._common import Command


@app.command("import", cls=Command)
@handle_errors
def import_command(
    source: str = typer.Argument(..., metavar="MODEL",
                                 help="A Hugging Face model directory (config.json, model.safetensors or "
                                      "pytorch_model.bin, vocab.json, preprocessor_config.json or "
                                      "processor_config.json) or a Hub model id (facebook/wav2vec2-base-960h, "
                                      "fetched into the Hugging Face cache; HF_HUB_OFFLINE=1 reads the cache "
                                      "only) of a Wav2Vec2/Hubert/Data2VecAudio ForCTC model."),
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint file to write (ckpt.pt)."),
    revision: str | None = typer.Option(None, "--revision", metavar="REV",
                                        help="Branch, tag or commit of a Hub model id (default: main)."),
    normalize: bool | None = typer.Option(
        None, "--normalize/--no-normalize", show_default=False,
        help="Whether the model expects each utterance normalised to zero mean and unit variance: needed only "
             "when the model has no preprocessor_config.json or processor_config.json (must agree with them)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing checkpoint at OUTPUT."),
    seed: int = typer.Option(0, "--seed", help="Seed of the gate predictor's hidden layer."),
) -> None:
    """Import a pretrained wav2vec2 / HuBERT / data2vec-audio CTC model, with a global gate
    predictor that opens every gate (train it with `i3d-edge train --init`)."""
    if output.is_dir():
        raise fail(f"{output}: is a directory, expected a checkpoint file name")
    if output.exists() and not force:
        raise fail(f"{output}: already exists (use --force to replace it)")
    from ..models.checkpoint import save_checkpoint
    from ..models.hf_import import import_hf_model

    ckpt = import_hf_model(source, seed=seed, revision=revision, do_normalize=normalize)
    save_checkpoint(output, ckpt)
    cfg, fc, info = ckpt.model_config, ckpt.feature_config, ckpt.train_state["imported_from"]
    origin = f" ({info['model_id']} at {info['commit'][:12]})" if "model_id" in info else ""
    typer.echo(f"wrote {output}{origin}: {info['class']} ({cfg.layout}), {cfg.n_layers} layers, "
               f"d_model {cfg.d_model}, {len(ckpt.tokens)} tokens, {info['parameters'] / 1e6:.2f}M parameters, "
               f"{fc.sample_rate} Hz audio {'normalised per utterance' if fc.do_normalize else 'not normalised'}; "
               "every gate open")
