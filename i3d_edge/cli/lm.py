"""``i3d-edge lm``: build (or take) a word n-gram language model and attach it to a bundle."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from . import app, fail, handle_errors
from ._common import Command, bundle_path


def _prune(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip()) if value else ()
    except ValueError:
        raise fail(f"--prune: expected comma-separated integers, got {value!r}") from None


@app.command("lm", cls=Command)
@handle_errors
def lm_command(
    bundle: Path = typer.Argument(..., help="Bundle directory to attach the language model to ('default', the "
                                  "embedded model, is refused: copy it first)."),
    text: list[Path] = typer.Option(None, "--text", help="Training text: one sentence per line, or "
                                    "transcripts.tsv (id<TAB>text). Repeatable."),
    arpa: Path = typer.Option(None, "--arpa", help="Attach this ARPA model instead of building one."),
    order: int = typer.Option(3, "--order", help="n-gram order when building."),
    min_count: int = typer.Option(1, "--min-count", help="Words seen fewer times become <unk>."),
    max_vocab: int = typer.Option(None, "--max-vocab", help="Keep at most this many most frequent words."),
    prune: str = typer.Option("", "--prune", metavar="N,N",
                              help="Per order >= 2: drop n-grams seen at most this often, "
                              "e.g. 0,1 for a trigram."),
    lm_weight: float = typer.Option(None, "--lm-weight",
                                    help="Default LM weight of the bundle's decoder.  \\[default: 1.0]"),
    word_score: float = typer.Option(None, "--word-score", help="Default bonus per word.  \\[default: 0.0]"),
    beam_size: int = typer.Option(None, "--beam-size", help="Default beam size.  \\[default: 32]"),
) -> None:
    """Attach a word n-gram LM: `transcribe` and `Runtime` then decode with a CTC beam search over its words.

    With neither --text nor --arpa, only the decoding settings of the bundle's LM change."""
    from ..bundle.language_model import attach_language_model, read_sentences, set_decoder_settings

    if text and arpa is not None:
        raise fail("give either --text FILE (one or more) or --arpa FILE, not both")
    bundle = bundle_path(bundle, writing=True)
    if not text and arpa is None:
        if lm_weight is None and word_score is None and beam_size is None:
            raise fail("give --text FILE or --arpa FILE to attach a model, or settings (--lm-weight, "
                       "--word-score, --beam-size) to change")
        section = set_decoder_settings(bundle, lm_weight=lm_weight, word_score=word_score, beam_size=beam_size)
        typer.echo(f"{bundle}: lm_weight {section['lm_weight']}, word_score {section['word_score']}, "
                   f"beam {section['beam_size']}")
        return
    started = time.perf_counter()
    settings = {k: v for k, v in {"lm_weight": lm_weight, "word_score": word_score, "beam_size": beam_size}.items()
                if v is not None}  # the others keep attach_language_model's defaults
    section = attach_language_model(
        bundle, arpa=arpa, sentences=read_sentences(text) if text else None, order=order, min_count=min_count,
        prune=_prune(prune), max_vocab=max_vocab, **settings)
    ngram = section.get("ngram", {})
    counts = ", ".join(f"{n}-grams {c}" for n, c in enumerate(ngram.get("counts", ()), start=1))
    typer.echo(f"attached {section['lm']} to {bundle} in {time.perf_counter() - started:.1f} s"
               + (f": {ngram['vocab']} words, {counts}" if "vocab" in ngram else ""))
