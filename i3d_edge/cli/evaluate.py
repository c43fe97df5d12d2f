"""``i3d-edge eval``: WER, CER, executed modules and RTF of a bundle on a corpus directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from . import app, handle_errors
from ._common import Command
from .runtime_options import open_runtime, runtime_options


@app.command("eval", cls=Command)
@handle_errors
@runtime_options()
def eval_command(
    corpus: Path = typer.Argument(..., help="Directory with transcripts.tsv (id<TAB>text) and audio named by id."),
    limit: int = typer.Option(None, "--limit", help="Only the first N utterances."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    shared: dict[str, Any] | None = None,  # the Runtime options (runtime_options.py)
) -> None:
    """Score a bundle on a corpus: WER, CER, sentence accuracy, average executed modules, RTF."""
    from ..apps.evaluation import evaluate_corpus

    rt = open_runtime(shared or {})
    report = evaluate_corpus(rt, corpus, batch_size=rt.options.batch_size, limit=limit)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    typer.echo(f"{report.corpus}: {report.utterances} utterances, {report.audio_seconds:.1f} s of audio")
    typer.echo(f"WER {100 * report.wer:.2f}%  CER {100 * report.cer:.2f}%  "
               f"sentence accuracy {100 * report.sentence_accuracy:.1f}%")
    typer.echo(f"decoder {rt.decoder}  modules executed {report.modules_executed:.1f}/{report.modules_total} "
               f"({100 * report.executed_fraction:.0f}%)  RTF {report.rtf:.4f}")
