"""``i3d-edge train``: train or resume an I3D CTC model on CPU (or a GPU with --device).

Defaults and help of the model and optimisation options are ModelConfig's and TrainConfig's."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import typer

from ..config import ModelConfig, TrainConfig
from ..module_kinds import ARCHITECTURES
from . import app, handle_errors
from ._common import Command, from_field, with_options


def _option(cls: type, name: str, flag: str, **extra: Any) -> tuple[Any, Any]:
    """(type, typer.Option) of config field ``cls.name``: its default and help are the field's."""
    kind = typing.get_type_hints(cls)[name]
    return (str if typing.get_origin(kind) is typing.Literal else kind), from_field(cls, name, flag, **extra)


# ModelConfig / TrainConfig field -> its option (defaults and help are the fields')
CONFIG_OPTIONS = {
    **{name: _option(ModelConfig, name, flag) for name, flag in (
        ("n_layers", "--layers"), ("d_model", "--d-model"), ("n_heads", "--heads"), ("d_ff", "--d-ff"))},
    "gates": _option(ModelConfig, "gates", "--gates", metavar="global|local|none"),
    "arch": _option(ModelConfig, "arch", "--arch", metavar="|".join(ARCHITECTURES)),
    "depthwise_kernel": _option(ModelConfig, "depthwise_kernel", "--depthwise-kernel"),
    "gate_objective": _option(TrainConfig, "gate_objective", "--gate-objective", metavar="target|expected|utterance"),
    "train_only": _option(TrainConfig, "train_only", "--train-only", metavar="all|gates"),
    "gate_lambda": _option(TrainConfig, "gate_lambda", "--lambda"),
    "specaugment": _option(TrainConfig, "specaugment", "--specaugment/--no-specaugment"),
    **{name: _option(TrainConfig, name, "--" + name.replace("_", "-")) for name in (
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
                        threads=threads or None, device=device, init=init, jobs=jobs,
                        log=lambda m: typer.echo(m, err=True))
    typer.echo(str(best))
