"""``i3d-edge train``: train or resume an I3D CTC model on CPU."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, handle_errors


@app.command("train")
@handle_errors
def train_command(
    run_dir: Path = typer.Option(..., "-o", "--run-dir", help="Run directory (resumes from its last.pt)."),
    train: list[Path] = typer.Option(..., "--train", help="Training corpus dir(s): transcripts.tsv + audio/."),
    dev: list[Path] = typer.Option(..., "--dev", help="Dev corpus dir(s) for CER."),
    layers: int = typer.Option(12, "--layers"),
    d_model: int = typer.Option(192, "--d-model"),
    heads: int = typer.Option(4, "--heads"),
    d_ff: int = typer.Option(768, "--d-ff"),
    gates: str = typer.Option("global", "--gates", help="global, local or none."),
    gate_lambda: float = typer.Option(2.0, "--lambda", help="Weight of the gate regulariser."),
    gate_target: float = typer.Option(0.5, "--gate-target",
                                      help="Target executed fraction, or the per-utterance budget of the "
                                           "utterance objective (0: minimise)."),
    gate_objective: str = typer.Option(
        "target", "--gate-objective", metavar="target|expected|utterance",
        help="Gate regulariser: |batch mean - target| (target), the expected executed fraction as in the "
             "I3D paper (expected), or each utterance's fraction above the target (utterance)."),
    gate_diversity: float = typer.Option(
        0.0, "--gate-diversity",
        help="Weight of a reward for gates that differ between the utterances of a batch (0: off)."),
    gate_lr_scale: float = typer.Option(1.0, "--gate-lr-scale",
                                        help="Learning rate of the gate predictor relative to --lr."),
    temperature: float = typer.Option(1.0, "--temperature", help="Gumbel-sigmoid temperature when gating starts."),
    temperature_end: float = typer.Option(0.0, "--temperature-end",
                                          help="Anneal the temperature geometrically to this (0: constant)."),
    train_only: str = typer.Option("all", "--train-only", metavar="all|gates",
                                   help="gates: train only the gate predictor on a trained model (rest frozen)."),
    reinit_gates: bool = typer.Option(False, "--reinit-gates",
                                      help="With --init: restart the gate predictor with every gate open "
                                           "(a saturated predictor does not learn)."),
    gate_warmup: int = typer.Option(2000, "--gate-warmup-steps", help="Steps with every gate open."),
    lr: float = typer.Option(1.5e-3, "--lr", help="Peak learning rate."),
    warmup: int = typer.Option(500, "--warmup-steps", help="Linear learning-rate warm-up steps."),
    max_steps: int = typer.Option(30000, "--max-steps"),
    batch_frames: int = typer.Option(24000, "--batch-frames", help="Padded feature frames per batch."),
    max_minutes: float = typer.Option(0, "--max-minutes", help="Stop and save after N minutes (0: none)."),
    threads: int = typer.Option(0, "--threads", help="Torch threads (0: default)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, ..."),
    init: Path | None = typer.Option(None, "--init", help="Start from this checkpoint's weights (new schedule)."),
    jobs: int = typer.Option(2, "--jobs", help="Processes for the one-off feature extraction."),
    fit_to_time: bool = typer.Option(False, "--fit-to-time",
                                     help="Rescale the step schedule so the run ends at --max-minutes."),
    specaugment: bool = typer.Option(True, "--specaugment/--no-specaugment",
                                     help="SpecAugment time/frequency masks on training batches."),
) -> None:
    """Train an I3D model (CTC + lambda x gate regulariser); rerun the same command to resume."""
    from ..config import ModelConfig
    from ..models.train import TrainConfig
    from ..models.train import train as run_training

    model_config = ModelConfig(n_layers=layers, d_model=d_model, n_heads=heads, d_ff=d_ff, gates=gates)  # type: ignore[arg-type]
    cfg = TrainConfig(lr=lr, warmup_steps=warmup, max_steps=max_steps, batch_frames=batch_frames,
                      gate_warmup_steps=gate_warmup,
                      gate_lambda=gate_lambda, gate_target=gate_target or None, seed=seed,
                      fit_to_time=fit_to_time, specaugment=specaugment, gate_objective=gate_objective,
                      gate_diversity=gate_diversity, gate_lr_scale=gate_lr_scale,
                      temperature=temperature, temperature_end=temperature_end or None,
                      train_only=train_only, reinit_gates=reinit_gates)
    if reinit_gates and init is None:
        raise typer.BadParameter("--reinit-gates needs --init")
    if fit_to_time and not max_minutes:
        raise typer.BadParameter("--fit-to-time needs --max-minutes")
    best = run_training(run_dir, train, dev, model_config, cfg, max_minutes=max_minutes or None,
                        threads=threads or None, device=device, init=init, jobs=jobs,
                        log=lambda m: typer.echo(m, err=True))
    typer.echo(str(best))
