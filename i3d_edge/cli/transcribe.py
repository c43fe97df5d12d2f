"""``i3d-edge transcribe``: audio files, directories or stdin -> text, JSON lines or subtitles,
on stdout or as one file per input and format."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

import typer

from ..audio import formats_label
from ..errors import AudioWarning
from . import app, fail, handle_errors
from ._common import Command
from .inputs import STDIN, expand_inputs, stdin_file
from .outputs import OutputFormat, Targets, parse_formats, plan_targets, render, write_atomic
from .runtime_options import open_runtime, runtime_options

__all__ = ["OutputFormat"]


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


class _Messages:
    """stderr lines of a run: errors and warnings, with the spooled stdin file named ``-``."""

    def __init__(self, progress: _Progress) -> None:
        self.progress = progress
        self.aliases: dict[str, str] = {}  # runtime path -> name shown
        self.failed = 0

    def _name(self, text: str) -> str:
        for path, name in self.aliases.items():
            text = text.replace(path, name)
        return text

    def error(self, text: str) -> None:
        self.progress.clear()
        typer.echo(f"error: {self._name(text)}", err=True)
        self.failed += 1

    def warning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                file: TextIO | None = None, line: str | None = None) -> None:
        """A ``warnings.showwarning`` for the run: AudioWarnings as one line, others as Python shows them."""
        from ..errors import AudioWarning

        if issubclass(category, AudioWarning):
            self.progress.clear()
            typer.echo(f"warning: {self._name(str(message))}", err=True)
        else:
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _check_options(formats: list[OutputFormat], output_dir: Path | None, output: Path | None, force: bool,
                   skip_existing: bool) -> None:
    if output_dir is not None and output is not None:
        raise fail("give --output-dir DIR or -o FILE, not both")
    if force and skip_existing:
        raise fail("give --force or --skip-existing, not both")
    if (force or skip_existing) and output_dir is None and output is None:
        raise fail("--force and --skip-existing apply to output files: give --output-dir DIR or -o FILE")
    if len(formats) > 1 and output_dir is None:
        raise fail(f"several formats ({', '.join(f.value for f in formats)}) are written as one file each: "
                   "give --output-dir DIR")


@app.command("transcribe", cls=Command)
@handle_errors
@runtime_options()
def transcribe_command(
    audio: list[str] = typer.Argument(
        ..., metavar="AUDIO", show_default=False,
        help=f"Audio files, directories (searched recursively) or - for standard input. Formats: {formats_label()}; "
             "any sample rate and channels."),
    output_dir: Path = typer.Option(
        None, "--output-dir", "-d", metavar="DIR", help="Write one file per input and format into DIR, named after "
        "the input (a.wav -> DIR/a.txt, DIR/a.srt ...); files found in a directory keep their sub-path."),
    output: Path = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write the result of the one input to FILE (the format from --format, else from FILE's suffix)."),
    fmt: list[str] = typer.Option(
        None, "--format", "-f", metavar="text|json|srt|vtt|all", show_default=False,
        help="Output format; repeat it or separate with commas for several at once (with --output-dir).  "
             "\\[default: text, or -o FILE's suffix]"),
    force: bool = typer.Option(False, "--force", help="Overwrite output files that exist."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Skip inputs whose output files all exist (to restart a long batch)."),
    globs: list[str] = typer.Option(
        None, "--glob", "-g", metavar="PATTERN",
        help="In directories, take only files matching PATTERN (file name or path below the directory, e.g. "
             "'*.mp3' or 'day1/*') instead of every audio extension; repeatable."),
    ray_address: str = typer.Option(
        None, "--ray", metavar="auto|ADDRESS", help="Transcribe on a Ray cluster (the \\[ray] extra; needs "
        "--output-dir): auto (RAY_ADDRESS, a cluster started here, else a local one) or the head's ADDRESS. "
        "Also writes DIR/transcripts.parquet, a table of the run's rows."),
    ray_actors: int = typer.Option(
        None, "--ray-actors", metavar="N", min=1, help="With --ray: Runtime actors (default: the cluster's CPUs "
        "divided by --threads)."),
    shared: dict[str, Any] | None = None,  # the Runtime options (runtime_options.py)
) -> None:
    """Transcribe audio files with input-dependent depth.

    Without --output-dir or -o, results go to stdout: text prints one line per input (prefixed
    with its path when there are several), json one JSON object per input per line, srt and vtt
    the subtitles of a single input (several inputs need --output-dir). Output files are written
    whole or not at all. An input that cannot be transcribed is reported on stderr as
    'error: PATH: cause' and the others go on; the exit status is 1 when any failed. Audio that is
    truncated or damaged but readable is transcribed with a 'warning:' line.
    """
    from ..audio import readable_formats

    try:
        formats = parse_formats(fmt, output)
    except ValueError as exc:
        raise fail(str(exc)) from None
    _check_options(formats, output_dir, output, force, skip_existing)
    inputs = expand_inputs(audio, readable_formats()[1], globs or ())
    to_files = output_dir is not None or output is not None
    runnable = sum(inp.error is None for inp in inputs)
    if output is not None and len(inputs) != 1:
        raise fail(f"-o FILE takes one input, got {len(inputs)}: give --output-dir DIR for several")
    if not to_files and formats[0] in (OutputFormat.srt, OutputFormat.vtt) and runnable > 1:
        raise fail(f"{formats[0].value} subtitles of {runnable} inputs would run together on stdout: "
                   "give --output-dir DIR (one subtitle file per input)")
    plans = (plan_targets(inputs, formats, output_dir=output_dir, output=output, force=force,
                          skip_existing=skip_existing) if to_files else [Targets({}) for _ in inputs])
    if ray_address is not None or ray_actors is not None:
        _transcribe_on_ray(inputs, plans, output_dir, ray_address, ray_actors, shared or {})
        return

    runtime = open_runtime(shared or {})
    if runtime.options.decoder == "auto" and runtime.decoder == "greedy" and runtime.manifest.decoder is not None:
        typer.echo("note: decoding greedily; install the [lm] extra (flashlight-text) to use this model's "
                   "language model", err=True)

    with contextlib.ExitStack() as stack:
        sources = [inp.source for inp in inputs]
        aliases: dict[str, str] = {}
        if any(inp.source == STDIN and inp.error is None for inp in inputs):
            spooled = stack.enter_context(stdin_file())
            aliases[spooled] = STDIN
            sources = [spooled if s == STDIN else s for s in sources]
        todo = [i for i, (inp, plan) in enumerate(zip(inputs, plans, strict=True))
                if inp.error is None and plan.error is None and not plan.skip]
        declared = [_header_seconds(sources[i]) for i in todo]
        several = len(inputs) > 1
        show = sys.stderr.isatty() and (len(todo) > 1 or sum(declared) > runtime.options.segment_seconds)
        progress = _Progress(sum(declared), len(todo), sys.stderr, show)
        messages = _Messages(progress)
        messages.aliases = aliases
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always", AudioWarning)
        warnings.showwarning = messages.warning

        reported = 0  # inputs before this one have had their refusal reported

        def report_until(index: int) -> None:
            nonlocal reported
            for inp, plan in zip(inputs[reported:index], plans[reported:index], strict=True):
                if inp.error is not None or plan.error is not None:
                    messages.error(inp.error or plan.error or "")
            reported = max(reported, index)

        results = runtime.iter_transcripts([sources[i] for i in todo], progress=progress.advance)
        for result in results:
            index = todo[result.index]
            inp = inputs[index]
            report_until(index)
            reported = index + 1
            progress.file_done(sum(declared[: result.index + 1]))
            progress.clear()
            if result.transcript is None:
                messages.error(str(result.error))
                continue
            if not to_files:
                document = render(formats[0], inp.name, result.transcript)
                if formats[0] is OutputFormat.text and several:
                    document = f"{inp.name}: {document}"
                sys.stdout.write(document)
                sys.stdout.flush()
                continue
            for out_fmt, path in plans[index].files.items():
                try:
                    write_atomic(path, render(out_fmt, inp.name, result.transcript))
                except OSError as exc:
                    messages.error(f"{inp.name}: cannot write {path} ({exc.strerror or type(exc).__name__})")
                    break
        report_until(len(inputs))
        progress.clear()
    skipped = sum(plan.skip for plan in plans)
    if skipped:
        typer.echo(f"note: skipped {skipped} input(s) whose output files exist (--skip-existing)", err=True)
    if messages.failed:
        raise typer.Exit(1)


def _transcribe_on_ray(inputs: list[Any], plans: list[Targets], output_dir: Path | None, address: str | None,
                       actors: int | None, shared: dict[str, Any]) -> None:
    """``--ray``: the same output files, written by the driver as the cluster's rows arrive (ray_batch.py)."""
    from enum import Enum

    from ..apps.ray_batch import transcribe_files
    from ..runtime.options import RuntimeOptions

    if address is None or output_dir is None:
        raise fail("--ray writes one file per input: give --ray auto|ADDRESS and --output-dir DIR")
    failed = 0

    def error(line: str) -> None:
        nonlocal failed
        failed += 1
        typer.echo(f"error: {line}", err=True)

    jobs = []
    for inp, plan in zip(inputs, plans, strict=True):
        if inp.error is not None or plan.error is not None:
            error(inp.error or plan.error or "")
        elif inp.source == STDIN:
            error(f"{STDIN}: standard input cannot be sent to a Ray cluster; give files")
        elif not plan.skip:
            jobs.append((inp.name, inp.source, plan.files))
    knobs = {k: (v.value if isinstance(v, Enum) else v) for k, v in shared.items()
             if k in RuntimeOptions.__dataclass_fields__ and v is not None}
    summary = transcribe_files(jobs, output_dir, address=address, model=shared.get("model"), knobs=knobs,
                               on_error=error, actors=actors)
    skipped = sum(plan.skip for plan in plans)
    if skipped:
        typer.echo(f"note: skipped {skipped} input(s) whose output files exist (--skip-existing)", err=True)
    typer.echo(summary.line(), err=True)
    if failed:
        raise typer.Exit(1)
