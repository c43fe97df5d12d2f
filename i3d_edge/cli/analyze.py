"""``i3d-edge analyze``: see which modules a bundle runs, for which inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..extras import install_command
from . import app, handle_errors
from ._common import Command, help_panel_safe
from .runtime_options import open_runtime, runtime_options


@app.command("analyze", cls=Command)
@handle_errors
@runtime_options("threshold", "threads")
def analyze_command(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    audio: list[Path] = typer.Argument(..., help="Audio files or directories of audio files."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the PNG plots and summary.json."),
    plots: bool = typer.Option(
        True, "--plots/--no-plots",
        help="Write PNG plots (needs matplotlib: " + help_panel_safe(install_command("plot")) + ")."),
    shared: dict[str, Any] | None = None,  # the Runtime options (runtime_options.py)
) -> None:
    """Gate heatmap, per-module execution rate, executed modules vs duration and SNR."""
    from ..apps.analysis import analyze

    summary = analyze(open_runtime(shared or {}, model=bundle), audio, output, plots=plots)
    typer.echo(f"{summary['utterances']} utterances: {summary['mean_modules_executed']:.1f}/"
               f"{summary['modules_total']} modules executed on average; wrote {output}/summary.json"
               + (f" and {len(summary['plots'])} plots" if plots else ""))
    for message in summary["errors"]:
        typer.echo(f"error: {message}", err=True)
    if summary["errors"]:
        raise typer.Exit(1)
