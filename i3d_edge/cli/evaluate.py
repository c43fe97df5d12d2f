"""``i3d-edge eval``: WER, CER, executed modules and RTF of a bundle on a corpus directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from . import app, handle_errors
from ._common import Command
from .transcribe import Decoder, Precision


@app.command("eval", cls=Command)
@handle_errors
def eval_command(
    corpus: Path = typer.Argument(..., help="Directory with transcripts.tsv (id<TAB>text) and audio named by id."),
    model: Path = typer.Option(None, "--model", "-m", help="Bundle directory (default: the embedded model)."),
    threshold: float = typer.Option(None, "--threshold", help="Gate threshold (default: the bundle's)."),
    max_modules: int = typer.Option(None, "--max-modules", help="Run at most K modules per utterance."),
    full_depth: bool = typer.Option(False, "--full-depth", help="Run every module."),
    precision: Precision = typer.Option(None, "--precision", help="Graph variant (default: the bundle's)."),
    threads: int = typer.Option(None, "--threads", help="onnxruntime intra-op threads (default: onnxruntime's "
                                "choice, one per physical core)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Utterances per batch."),
    limit: int = typer.Option(None, "--limit", help="Only the first N utterances."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    decoder: Decoder = typer.Option(Decoder.auto, "--decoder", help="auto: the bundle's language model when it "
                                    "has one (and flashlight-text is installed), else greedy."),
    lm_weight: float = typer.Option(None, "--lm-weight", help="LM weight (default: the bundle's)."),
    word_score: float = typer.Option(None, "--word-score", help="Bonus per word (default: the bundle's)."),
    beam_size: int = typer.Option(None, "--beam-size", help="Beam size of LM decoding (default: the bundle's)."),
) -> None:
    """Score a bundle on a corpus: WER, CER, sentence accuracy, average executed modules, RTF."""
    from ..apps.evaluation import evaluate_corpus
    from ..runtime import Runtime

    rt = Runtime(model, threshold=threshold, max_modules=max_modules, full_depth=full_depth, threads=threads,
                 precision=None if precision is None else precision.value, decoder=decoder.value,
                 lm_weight=lm_weight, word_score=word_score, beam_size=beam_size)
    report = evaluate_corpus(rt, corpus, batch_size=batch_size, limit=limit)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    typer.echo(f"{report.corpus}: {report.utterances} utterances, {report.audio_seconds:.1f} s of audio")
    typer.echo(f"WER {100 * report.wer:.2f}%  CER {100 * report.cer:.2f}%  "
               f"sentence accuracy {100 * report.sentence_accuracy:.1f}%")
    typer.echo(f"decoder {rt.decoder}  modules executed {report.modules_executed:.1f}/{report.modules_total} "
               f"({100 * report.executed_fraction:.0f}%)  RTF {report.rtf:.4f}")
