"""``i3d-edge bench``: speed and memory of one model against full-depth baselines.

``benchmarks/run.py`` runs the whole suite (default model and a larger random-weight model).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer

from . import app, handle_errors
from ._common import Command


def _lengths(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated seconds, got {text!r}") from None
    if not values or min(values) < 0.5:
        raise typer.BadParameter("utterance lengths must be >= 0.5 s")
    return values


def _command_line(ctx: typer.Context) -> str:
    """The command as typed, rebuilt from the parsed options (exact also under a test runner)."""
    words = ["i3d-edge", ctx.info_name or "bench"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name != "option" or value is None or value == param.default:
            continue
        flag = max(param.opts, key=len)
        words += [flag] if getattr(param, "is_flag", False) else [flag, str(value)]
    return shlex.join(words)


@app.command("bench", cls=Command)
@handle_errors
def bench_command(
    ctx: typer.Context,
    model: Path = typer.Option(
        None, "--model", "-m",
        help="Bundle directory (default: the embedded model; without one, a random 12-layer d_model 192 stand-in)."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="Weights for the PyTorch eager baseline (default: random init of the same config; "
                                   "full-depth speed does not depend on the weights)."),
    random_layers: int = typer.Option(None, "--random-layers", help="Benchmark a random-weight model of N layers."),
    random_d_model: int = typer.Option(None, "--random-d-model", help="Width of the random-weight model."),
    threads: int = typer.Option(1, "--threads", min=1, help="onnxruntime intra-op threads per session (and torch)."),
    repeats: int = typer.Option(None, "--repeats", min=1, help="Timed rounds per utterance length.  \\[default: 10]"),
    quick: bool = typer.Option(False, "--quick", help="Short development run: 3 rounds, 60 s long file."),
    lengths: str = typer.Option(None, "--lengths", metavar="S,S,...",
                                help="Utterance lengths in seconds.  \\[default: 2,10,30]"),
    long_seconds: float = typer.Option(None, "--long-seconds", min=0,
                                       help="Length of the long file (0 skips it).  \\[default: 600; 60 with --quick]"),
    cold_runs: int = typer.Option(None, "--cold-runs", min=0, help="Fresh processes per cold-start variant."),
    audio: str = typer.Option("synthetic", "--audio",
                              help="Test audio: synthetic (speech-like), or a directory of audio files (real speech)."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Where random-weight bundles are cached.  "
                                   "\\[default: ~/.cache/i3d-edge/bench]"),
    output: Path = typer.Option(None, "-o", "--output", help="Write the markdown report to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of the markdown."),
) -> None:
    """Benchmark a model: PyTorch eager, monolithic ONNX, the runtime at full depth and gated, fp32 and int8."""
    from ..apps.bench import BenchConfig, render_markdown, run_bench
    from ..runtime import DEFAULT_BUNDLE

    random = random_layers is not None or random_d_model is not None
    if model is not None and random:
        raise typer.BadParameter("--model and --random-layers/--random-d-model exclude each other")
    if model is None and not random and (DEFAULT_BUNDLE / "manifest.json").is_file():
        model, name = DEFAULT_BUNDLE, "default model (embedded)"
    elif model is None and not random:
        random_layers, random_d_model, name = 12, 192, "default-size stand-in: random 12 layers, d_model 192"
    else:
        name = None
    knobs = {"model": model, "checkpoint": checkpoint, "random_layers": random_layers or 18,
             "random_d_model": random_d_model or 256, "threads": threads, "repeats": repeats,
             "lengths": _lengths(lengths), "long_seconds": long_seconds, "cold_runs": cold_runs, "audio": audio,
             "cache_dir": cache_dir, "name": name}
    knobs = {k: v for k, v in knobs.items() if v is not None}
    cfg = BenchConfig.quick_preset(**knobs) if quick else BenchConfig(**knobs)
    report = run_bench(cfg, log=lambda msg: typer.echo(msg, err=True))
    command = _command_line(ctx)
    markdown = render_markdown([report], command=command)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    typer.echo(json.dumps(report, indent=1) if as_json else markdown)
