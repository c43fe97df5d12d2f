"""``i3d-edge transcribe``: audio files, directories or stdin -> text, JSON lines or subtitles,
on stdout or as one file per input and format."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from ..audio import formats_label
from ..errors import AudioError, AudioWarning
from . import app, fail, handle_errors
from ._common import Command, bundle_path, check_conflicts, help_panel_safe
from .inputs import STDIN, Input, expand_inputs, stdin_file
from .outputs import CUE_FORMATS, OutputFormat, Targets, parse_formats, plan_targets, publish, render
from .runtime_options import open_runtime, runtime_knobs, runtime_options
from .terminal import escape_controls

if TYPE_CHECKING:
    from ..runtime import Transcript

__all__ = ["OutputFormat", "render_named"]


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
        typer.echo(f"error: {escape_controls(self._name(text))}", err=True)
        self.failed += 1

    def note(self, text: str) -> None:
        """A ``warning:`` line of the command itself (not from a library's warnings)."""
        self.progress.clear()
        typer.echo(f"warning: {self._name(text)}", err=True)

    def warning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                file: TextIO | None = None, line: str | None = None) -> None:
        """A ``warnings.showwarning`` for the run: one ``warning:`` line each (AudioWarnings name the input;
        a library's warning gets its category), control characters escaped."""
        from ..errors import AudioWarning

        self.progress.clear()
        text = self._name(str(message)).strip()
        if not issubclass(category, AudioWarning):
            text = f"{category.__name__}: {' '.join(text.split())}"
        typer.echo(f"warning: {escape_controls(text)}", err=True)


def _check_options(formats: list[OutputFormat], output_dir: Path | None, output: Path | None, force: bool,
                   skip_existing: bool, max_line_chars: int | None, ray_address: str | None,
                   ray_actors: int | None) -> None:
    """What the conflicts table (``_common.CONFLICTS``) does not cover: options that need another."""
    if ray_actors is not None and ray_address is None:
        raise fail("--ray-actors sizes a Ray run: give it with --ray auto|ADDRESS")
    if ray_address is not None and output_dir is None:
        raise fail("--ray writes one file per input: give --output-dir DIR")
    if max_line_chars is not None and max_line_chars < 1:
        raise fail(f"--max-line-chars must be at least 1, got {max_line_chars}")
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
        help=f"Audio files, directories (searched recursively) or - for standard input. Formats: "
             f"{help_panel_safe(formats_label())}; "
             "any sample rate and channels."),
    output_dir: Path = typer.Option(
        None, "--output-dir", "-d", metavar="DIR", help="Write one file per input and format into DIR, named after "
        "the input (a.wav -> DIR/a.txt, DIR/a.srt ...); files found in a directory keep their sub-path."),
    output: Path = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write the result of the one input to FILE (the format from --format, else from FILE's suffix)."),
    fmt: list[str] = typer.Option(
        None, "--format", "-f", metavar="txt|json|srt|vtt|tsv|all", show_default=False,
        help="Output format (text is txt); repeat it or separate with commas for several at once (with "
             "--output-dir). json carries words and tokens with times and confidences.  "
             "\\[default: txt, or -o FILE's suffix]"),
    max_line_chars: int = typer.Option(
        None, "--max-line-chars", metavar="N", show_default=False,
        help="Longest subtitle line (srt, vtt, tsv): cues are built from whole words.  \\[default: 42]"),
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

    Without --output-dir or -o, results go to stdout: txt prints one line per input (prefixed
    with its path when there are several), json one JSON object per input per line, srt, vtt and
    tsv the subtitles of a single input (several inputs need --output-dir). Output files are written
    whole or not at all. An input that cannot be transcribed is reported on stderr as
    'error: PATH: cause' and the others go on; the exit status is 1 when any failed. Audio that is
    truncated or damaged but readable is transcribed with a 'warning:' line.
    """
    from ..audio import readable_formats

    try:
        formats = parse_formats(fmt, output)
    except ValueError as exc:
        raise fail(str(exc)) from None
    check_conflicts({**(shared or {}), "output_dir": output_dir, "output": output, "force": force,
                     "skip_existing": skip_existing, "formats": formats, "max_line_chars": max_line_chars,
                     "ray_address": ray_address})
    _check_options(formats, output_dir, output, force, skip_existing, max_line_chars, ray_address, ray_actors)
    inputs = expand_inputs(audio, readable_formats()[1], globs or ())
    to_files = output_dir is not None or output is not None
    runnable = sum(inp.error is None for inp in inputs)
    if output is not None and len(inputs) != 1:
        raise fail(f"-o FILE takes one input, got {len(inputs)}: give --output-dir DIR for several")
    if not to_files and formats[0] in CUE_FORMATS and runnable > 1:
        raise fail(f"{formats[0].value} subtitles of {runnable} inputs would run together on stdout: "
                   "give --output-dir DIR (one subtitle file per input)")
    plans = (plan_targets(inputs, formats, output_dir=output_dir, output=output, force=force,
                          skip_existing=skip_existing) if to_files else [Targets({}) for _ in inputs])
    if ray_address is not None and output_dir is not None:
        _transcribe_on_ray(inputs, plans, _RayRun(ray_address, ray_actors, output_dir, force, max_line_chars),
                           shared or {})
        return

    runtime = open_runtime(shared or {})
    if runtime.options.decoder == "auto" and runtime.decoder == "greedy" and runtime.manifest.decoder is not None:
        typer.echo("note: decoding greedily; install the [lm] extra (flashlight-text) to use this model's "
                   "language model", err=True)

    with contextlib.ExitStack() as stack:
        sources = [inp.source for inp in inputs]
        aliases: dict[str, str] = {}
        if any(inp.source == STDIN and inp.error is None for inp in inputs):
            try:
                spooled = stack.enter_context(stdin_file())
            except AudioError as exc:  # too large, unreadable, a full disk: that input's one-line error
                inputs = [dataclasses.replace(inp, error=str(exc)) if inp.source == STDIN and inp.error is None
                          else inp for inp in inputs]
            else:
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
            if result.transcript.modules_executed == 0 and result.transcript.modules_total > 0:
                messages.note(f"{inp.name}: no encoder module ran (--threshold or --max-modules left none): "
                              "this text comes from the frontend and the head alone")
            if not to_files:
                document = render(formats[0], inp.name, result.transcript, max_line_chars)
                if formats[0] is OutputFormat.txt and several:
                    document = f"{escape_controls(inp.name)}: {document}"
                sys.stdout.write(document)
                sys.stdout.flush()
                continue
            for out_fmt, path in plans[index].files.items():
                try:
                    publish(path, render(out_fmt, inp.name, result.transcript, max_line_chars), root=output_dir,
                            overwrite=force)
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


@dataclasses.dataclass(frozen=True)
class _RayRun:
    """``--ray``'s settings: where, how many actors, and how the files are written."""

    address: str
    actors: int | None
    output_dir: Path
    force: bool
    max_line_chars: int | None


def render_named(fmt: str, name: str, result: Transcript, max_chars: int | None = None) -> str:
    """``render`` by the format's name: the documents ``--ray``'s workers make (apps/ray_batch.py)."""
    return render(OutputFormat(fmt), name, result, max_chars)


def _transcribe_on_ray(inputs: list[Input], plans: list[Targets], run: _RayRun, shared: dict[str, Any]) -> None:
    """``--ray``: the same output files as without it, written here as the cluster's rows arrive."""
    from ..apps.ray_batch import DOCUMENT, TABLE_NAME, transcribe_files

    failed = 0

    def error(line: str) -> None:
        nonlocal failed
        failed += 1
        typer.echo(f"error: {escape_controls(line)}", err=True)

    jobs: list[tuple[str, str]] = []
    targets: dict[str, dict[OutputFormat, Path]] = {}
    for inp, plan in zip(inputs, plans, strict=True):
        if inp.error is not None or plan.error is not None:
            error(inp.error or plan.error or "")
        elif inp.source == STDIN:
            error(f"{STDIN}: standard input cannot be sent to a Ray cluster; give files")
        elif not plan.skip:
            jobs.append((inp.name, inp.source))
            targets[inp.name] = dict(plan.files)

    def write(row: dict[str, Any]) -> None:
        name = row["path"]
        for line in row["warnings"]:
            typer.echo(f"warning: {escape_controls(line)}", err=True)
        if row["error"] is not None:
            error(row["error"])
            return
        if row["modules_executed"] == 0 and row["modules_total"] > 0:
            typer.echo(f"warning: {escape_controls(name)}: no encoder module ran (--threshold or --max-modules left "
                       "none): this text comes from the frontend and the head alone", err=True)
        for fmt, path in targets[name].items():
            try:
                publish(path, row[DOCUMENT + fmt.value], root=run.output_dir, overwrite=run.force)
            except OSError as exc:
                error(f"{name}: cannot write {path} ({exc.strerror or type(exc).__name__})")
                return

    formats = sorted({fmt.value for files in targets.values() for fmt in files})
    model = shared.get("model")
    summary = transcribe_files(jobs, write, address=run.address, model=None if model is None else bundle_path(model),
                               knobs=runtime_knobs(shared), formats=formats,
                               render=functools.partial(render_named, max_chars=run.max_line_chars),
                               table=run.output_dir / TABLE_NAME, actors=run.actors)
    skipped = sum(plan.skip for plan in plans)
    if skipped:
        typer.echo(f"note: skipped {skipped} input(s) whose output files exist (--skip-existing)", err=True)
    typer.echo(summary.line(), err=True)
    if failed:
        raise typer.Exit(1)
