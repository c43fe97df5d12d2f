"""``i3d-edge train``: train or resume an I3D CTC model on CPU (or a GPU with --device).

Defaults and help of the model and optimisation options are ModelConfig's and TrainConfig's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..config import ModelConfig, TrainConfig
from . import app, handle_errors
from ._common import Command, with_options
from .model_options import MODEL_OPTIONS, config_option

# ModelConfig / TrainConfig field -> its option (defaults and help are the fields')
CONFIG_OPTIONS = {
    **MODEL_OPTIONS,
    "gate_objective": config_option(TrainConfig, "gate_objective", "--gate-objective",
                                    metavar="target|expected|utterance"),
    "train_only": config_option(TrainConfig, "train_only", "--train-only", metavar="all|gates"),
    "gate_lambda": config_option(TrainConfig, "gate_lambda", "--lambda"),
    "specaugment": config_option(TrainConfig, "specaugment", "--specaugment/--no-specaugment"),
    **{name: config_option(TrainConfig, name, "--" + name.replace("_", "-")) for name in (
        "gate_target", "gate_diversity", "gate_lr_scale", "temperature", "temperature_end", "reinit_gates",
        "gate_warmup_steps", "lr", "warmup_steps", "max_steps", "batch_frames", "seed", "fit_to_time")},
}


@app.command("train", cls=Command)
@handle_errors
@with_options(CONFIG_OPTIONS, into="config")
def train_command(
    run_dir: Path = typer.Option(..., "-o", "--run-dir", help="Run directory (resumes from its last.pt)."),
    train: list[Path] = typer.Option(..., "--train", help="Training corpus dir(s): transcripts.tsv + audio/."),
    dev: list[Path] = typer.Option(..., "--dev", help="Dev corpus dir(s) for CER."),
    max_minutes: float = typer.Option(0, "--max-minutes", help="Stop and save after N minutes (0: none)."),
    threads: int = typer.Option(0, "--threads", help="Torch threads (0: default)."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, ..."),
    init: Path | None = typer.Option(None, "--init", help="Start from this checkpoint's weights (new schedule)."),
    jobs: int = typer.Option(2, "--jobs", help="Processes for the one-off feature extraction."),
    edge_silence: float | None = typer.Option(
        None, "--edge-silence", metavar="SECONDS",
        help="Digital silence put before and after every utterance, in training and by the exported "
             "bundle's runtime (default: the --init checkpoint's; 0 for a new model)."),
    config: dict[str, Any] | None = None,  # the ModelConfig / TrainConfig options above
) -> None:
    """Train an I3D model (CTC + lambda x gate regulariser); rerun the same command to resume."""
    from ..models.train import train as run_training

    values = config or {}
    model_config = ModelConfig(**{k: v for k, v in values.items() if k in ModelConfig.__dataclass_fields__})
    cfg = TrainConfig(**{k: v for k, v in values.items() if k in TrainConfig.__dataclass_fields__})
    if cfg.reinit_gates and init is None:
        raise typer.BadParameter("--reinit-gates needs --init")
    if cfg.fit_to_time and not max_minutes:
        raise typer.BadParameter("--fit-to-time needs --max-minutes")
    best = run_training(run_dir, train, dev, model_config, cfg, max_minutes=max_minutes or None,
                        threads=threads or None, device=device, init=init, jobs=jobs, edge_silence=edge_silence,
                        log=lambda m: typer.echo(m, err=True))
    typer.echo(str(best))
