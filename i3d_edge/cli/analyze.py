"""``i3d-edge analyze``: see which modules a bundle runs, for which inputs."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, handle_errors


@app.command("analyze")
@handle_errors
def analyze_command(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    audio: list[Path] = typer.Argument(..., help="Audio files or directories of audio files."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the PNG plots and summary.json."),
    threshold: float = typer.Option(None, "--threshold", help="Gate threshold (default: the bundle's)."),
    threads: int = typer.Option(None, "--threads", help="onnxruntime intra-op threads."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots (needs the [plot] extra)."),
) -> None:
    """Gate heatmap, per-module execution rate, executed modules vs duration and SNR."""
    from ..analysis import analyze
    from ..runtime import Runtime

    summary = analyze(Runtime(bundle, threshold=threshold, threads=threads), audio, output, plots=plots)
    typer.echo(f"{summary['utterances']} utterances: {summary['mean_modules_executed']:.1f}/"
               f"{summary['modules_total']} modules executed on average; wrote {output}/summary.json"
               + (f" and {len(summary['plots'])} plots" if plots else ""))
    for message in summary["errors"]:
        typer.echo(f"error: {message}", err=True)
    if summary["errors"]:
        raise typer.Exit(1)
