"""``i3d-edge train``: train or resume an I3D CTC model on CPU (or a GPU with --device).

Defaults and help of the model and optimisation options are ModelConfig's and TrainConfig's."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import ModelConfig, TrainConfig
from . import app, handle_errors
from ._common import Command, from_field

T, M = TrainConfig, ModelConfig


@app.command("train", cls=Command)
@handle_errors
def train_command(
    ctx: typer.Context,
    run_dir: Path = typer.Option(..., "-o", "--run-dir", help="Run directory (resumes from its last.pt)."),
    train: list[Path] = typer.Option(..., "--train", help="Training corpus dir(s): transcripts.tsv + audio/."),
    dev: list[Path] = typer.Option(..., "--dev", help="Dev corpus dir(s) for CER."),
    n_layers: int = from_field(M, "n_layers", "--layers"),
    d_model: int = from_field(M, "d_model", "--d-model"),
    n_heads: int = from_field(M, "n_heads", "--heads"),
    d_ff: int = from_field(M, "d_ff", "--d-ff"),
    gates: str = from_field(M, "gates", "--gates", metavar="global|local|none"),
    gate_lambda: float = from_field(T, "gate_lambda", "--lambda"),
    gate_target: float = from_field(T, "gate_target", "--gate-target"),
    gate_objective: str = from_field(T, "gate_objective", "--gate-objective", metavar="target|expected|utterance"),
    gate_diversity: float = from_field(T, "gate_diversity", "--gate-diversity"),
    gate_lr_scale: float = from_field(T, "gate_lr_scale", "--gate-lr-scale"),
    temperature: float = from_field(T, "temperature", "--temperature"),
    temperature_end: float = from_field(T, "temperature_end", "--temperature-end"),
    train_only: str = from_field(T, "train_only", "--train-only", metavar="all|gates"),
    reinit_gates: bool = from_field(T, "reinit_gates", "--reinit-gates"),
    gate_warmup_steps: int = from_field(T, "gate_warmup_steps", "--gate-warmup-steps"),
    lr: float = from_field(T, "lr", "--lr"),
    warmup_steps: int = from_field(T, "warmup_steps", "--warmup-steps"),
    max_steps: int = from_field(T, "max_steps", "--max-steps"),
    batch_frames: int = from_field(T, "batch_frames", "--batch-frames"),
    seed: int = from_field(T, "seed", "--seed"),
    fit_to_time: bool = from_field(T, "fit_to_time", "--fit-to-time"),
    specaugment: bool = from_field(T, "specaugment", "--specaugment/--no-specaugment"),
    max_minutes: float = typer.Option(0, "--max-minutes", help="Stop and save after N minutes (0: none)."),
    threads: int = typer.Option(0, "--threads", help="Torch threads (0: default)."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, ..."),
    init: Path | None = typer.Option(None, "--init", help="Start from this checkpoint's weights (new schedule)."),
    jobs: int = typer.Option(2, "--jobs", help="Processes for the one-off feature extraction."),
) -> None:
    """Train an I3D model (CTC + lambda x gate regulariser); rerun the same command to resume."""
    from ..models.train import train as run_training

    params = ctx.params
    model_config = ModelConfig(**{k: v for k, v in params.items() if k in ModelConfig.__dataclass_fields__})
    cfg = TrainConfig(**{k: v for k, v in params.items() if k in TrainConfig.__dataclass_fields__})
    if reinit_gates and init is None:
        raise typer.BadParameter("--reinit-gates needs --init")
    if fit_to_time and not max_minutes:
        raise typer.BadParameter("--fit-to-time needs --max-minutes")
    best = run_training(run_dir, train, dev, model_config, cfg, max_minutes=max_minutes or None,
                        threads=threads or None, device=device, init=init, jobs=jobs,
                        log=lambda m: typer.echo(m, err=True))
    typer.echo(str(best))
