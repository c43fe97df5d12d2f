"""``i3d-edge export`` (checkpoint -> verified bundle) and ``i3d-edge inspect`` (bundle -> report)."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path

import typer

from . import app, fail, handle_errors
from ._common import Command


class Quantize(str, Enum):
    int8 = "int8"


@app.command("export", cls=Command)
@handle_errors
def export_command(
    checkpoint: Path = typer.Argument(..., help="I3D checkpoint (ckpt.pt) to export."),
    output: Path = typer.Option(..., "-o", "--output", help="Bundle directory to create."),
    quantize: Quantize | None = typer.Option(
        None, "--quantize", help="Also write dynamic int8 graphs beside the fp32 ones."),
    monolithic: bool = typer.Option(
        False, "--monolithic", help="Also write the whole model as one graph (every module executed)."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify every graph with onnxsim."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check parity with the torch model."),
    force: bool = typer.Option(False, "--force", help="Replace an existing bundle at OUTPUT."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (17-20)."),
) -> None:
    """Export a checkpoint as a bundle: one ONNX graph per frontend, gate predictor, encoder module and head."""
    from ..bundle.inspection import format_bytes, verification_summary
    from ..export import export_bundle

    started = time.perf_counter()
    manifest = export_bundle(checkpoint, output, quantize=quantize.value if quantize else None,
                             monolithic=monolithic, simplify=simplify, verify=verify, force=force, opset=opset)
    typer.echo(f"exported {checkpoint} -> {output} in {time.perf_counter() - started:.1f} s")
    for name, variant in manifest["variants"].items():
        size = sum(manifest["files"][rel]["bytes"] for rel in variant["graphs"].values())
        typer.echo(f"  {name}: {len(variant['graphs'])} graphs, {format_bytes(size)}")
    summary = verification_summary(manifest["verification"])
    typer.echo(f"  verification: {summary[0]}")
    for line in summary[1:]:
        typer.echo(f"    {line}")


@app.command("inspect", cls=Command)
@handle_errors
def inspect_command(
    bundle: str = typer.Argument(
        "default", metavar="BUNDLE", show_default=False,
        help="Bundle directory; 'default' or none: the embedded default model (a directory named 'default' "
             "is read when there is one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show a bundle's graphs, sizes, parameters, opsets, gate layout, variants, provenance and verification.

    Needs neither torch nor onnx."""
    from ..bundle.inspection import inspect_bundle, render_text
    from ..runtime import DEFAULT_BUNDLE

    path = DEFAULT_BUNDLE if bundle == "default" and not Path(bundle).exists() else Path(bundle)
    if path == DEFAULT_BUNDLE and not (DEFAULT_BUNDLE / "manifest.json").is_file():
        raise fail("no default model is embedded in this i3d-edge install: give a bundle directory")
    info = inspect_bundle(path)
    typer.echo(json.dumps(info, indent=2, ensure_ascii=False) if as_json else render_text(info))
