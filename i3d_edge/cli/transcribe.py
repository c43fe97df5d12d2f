"""``i3d-edge transcribe``: audio files -> text, JSON lines or subtitles on stdout."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import TYPE_CHECKING, TextIO

import typer

from . import app, handle_errors

if TYPE_CHECKING:
    from ..runtime import Transcript


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    srt = "srt"
    vtt = "vtt"


class Decoder(str, Enum):
    auto = "auto"
    greedy = "greedy"
    lm = "lm"


class Precision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"


class _Progress:
    """A one-line progress bar on stderr (seconds of audio), drawn only on a terminal."""

    WIDTH = 30

    def __init__(self, total_seconds: float, files: int, stream: TextIO, enabled: bool) -> None:
        self.total = max(total_seconds, 1e-9)
        self.files = files
        self.stream = stream
        self.enabled = enabled
        self.seconds = 0.0
        self.done = 0

    def advance(self, seconds: float) -> None:
        self.seconds = min(self.total, self.seconds + seconds)
        self._draw()

    def file_done(self, seconds_so_far: float) -> None:
        """One more file finished (or failed); ``seconds_so_far``: declared length of all finished files."""
        self.done += 1
        self.seconds = min(self.total, max(self.seconds, seconds_so_far))
        self._draw()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = int(self.WIDTH * self.seconds / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{self.seconds:.0f}/{self.total:.0f} s audio, {self.done}/{self.files} files")
        self.stream.flush()


def _header_seconds(path: str) -> float:
    """Declared duration of a file (0 when its header cannot be read: the error comes later)."""
    from ..audio import audio_info
    from ..errors import AudioError

    try:
        return audio_info(path).duration
    except AudioError:
        return 0.0


def _render(name: str, result: Transcript, fmt: OutputFormat, several: bool) -> str:
    if fmt is OutputFormat.json:
        return json.dumps({"audio": name, **result.to_dict()}, ensure_ascii=False)
    if fmt is OutputFormat.srt or fmt is OutputFormat.vtt:
        from ..runtime.subtitles import to_srt, to_vtt

        return (to_srt if fmt is OutputFormat.srt else to_vtt)(result)
    return f"{name}: {result.text}" if several else result.text


@app.command("transcribe")
@handle_errors
def transcribe_command(
    audio: list[str] = typer.Argument(..., help="Audio files (wav, flac, ogg; any sample rate and channels).",
                                      show_default=False, metavar="AUDIO"),
    model: str = typer.Option(None, "--model", "-m", help="Bundle directory (default: the embedded model)."),
    threshold: float = typer.Option(None, "--threshold", help="Gate threshold in [0, 1) (default: the bundle's)."),
    max_modules: int = typer.Option(None, "--max-modules", help="Run at most K modules per utterance."),
    full_depth: bool = typer.Option(False, "--full-depth", help="Run every module, ignoring the gates."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", "-f", help="Output format."),
    threads: int = typer.Option(None, "--threads", help="onnxruntime intra-op threads per session."),
    precision: Precision = typer.Option(None, "--precision", help="Graph variant (default: the bundle's)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Audio segments per batch."),
    decoder: Decoder = typer.Option(Decoder.auto, "--decoder", help="auto: the bundle's language model when it "
                                    "has one (and flashlight-text is installed), else greedy."),
    lm_weight: float = typer.Option(None, "--lm-weight", help="LM weight (default: the bundle's)."),
    word_score: float = typer.Option(None, "--word-score", help="Bonus per word (default: the bundle's)."),
    beam_size: int = typer.Option(None, "--beam-size", help="Beam size of LM decoding (default: the bundle's)."),
) -> None:
    """Transcribe audio files with input-dependent depth; results on stdout, errors on stderr.

    Text prints one line per file (prefixed with the path when there are several); json prints
    one JSON object per file per line; srt and vtt print subtitles. A file that cannot be
    transcribed is reported on stderr as 'error: PATH: cause' and the others go on; the exit status
    is 1 when any failed.
    """
    from ..runtime import Runtime

    runtime = Runtime(model, threshold=threshold, max_modules=max_modules, full_depth=full_depth,
                      threads=threads, precision=None if precision is None else precision.value,
                      batch_size=batch_size, decoder=decoder.value, lm_weight=lm_weight, word_score=word_score,
                      beam_size=beam_size)
    if decoder is Decoder.auto and runtime.decoder == "greedy" and runtime.manifest.decoder is not None:
        typer.echo("note: decoding greedily; install the [lm] extra (flashlight-text) to use this model's "
                   "language model", err=True)
    declared = [_header_seconds(path) for path in audio]
    several = len(audio) > 1
    show = sys.stderr.isatty() and (several or sum(declared) > runtime.options.segment_seconds)
    progress = _Progress(sum(declared), len(audio), sys.stderr, show)
    failed = 0
    for result in runtime.iter_transcripts(audio, progress=progress.advance):
        progress.file_done(sum(declared[: result.index + 1]))
        progress.clear()
        if result.transcript is None:
            typer.echo(f"error: {result.error}", err=True)
            failed += 1
            continue
        typer.echo(_render(result.name, result.transcript, fmt, several))
    progress.clear()
    if failed:
        raise typer.Exit(1)
