"""What ``transcribe`` reads: files, directories of audio files (recursively) and ``-`` (stdin).

Expanding the command line never fails as a whole: a directory without audio, a second ``-``
or an unreadable stdin becomes that input's one-line error, and the other inputs go on.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import AudioError

__all__ = ["DEFAULT_STDIN_LIMIT", "STDIN", "STDIN_LIMIT_ENV", "Input", "expand_inputs", "stdin_file", "stdin_limit"]

STDIN = "-"


@dataclass(frozen=True)
class Input:
    """One audio input of the command line."""

    name: str  # how output and messages name it: the path as given or as found, or "-"
    source: str  # the path the runtime reads ("-": stdin, replaced by a spooled copy)
    relative: Path | None  # path below the directory it was found in (names its output files)
    error: str | None = None  # why it cannot be read at all (reported, not transcribed)


def _matches(rel: Path, extensions: Sequence[str], globs: Sequence[str]) -> bool:
    if globs:
        text = rel.as_posix()
        return any(fnmatch.fnmatch(rel.name, g) or fnmatch.fnmatch(text, g) for g in globs)
    return rel.suffix[1:].lower() in extensions


def _walk(root: Path, extensions: Sequence[str], globs: Sequence[str]) -> Iterator[Path]:
    """Audio files below ``root`` (relative paths), recursively, sorted; hidden entries skipped,
    symlinked directories not followed (no loops)."""
    found: list[tuple[tuple[str, ...], Path]] = []
    for folder, dirs, files in os.walk(root, onerror=None, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder).relative_to(root)
        for name in files:
            rel = base / name
            if not name.startswith(".") and _matches(rel, extensions, globs):
                found.append((rel.parts, rel))
    found.sort()
    return (rel for _, rel in found)


def expand_inputs(args: Sequence[str], extensions: Sequence[str], globs: Sequence[str]) -> list[Input]:
    """Command-line arguments -> inputs, in order; directories expand to their audio files
    (those with ``extensions``, or matching one of ``globs``: the file name or the path below the
    directory), sorted by path. Files named explicitly are taken whatever their extension."""
    inputs: list[Input] = []
    seen_stdin = False
    for arg in args:
        if arg == STDIN:
            error = "standard input can be read only once" if seen_stdin else None
            seen_stdin = True
            inputs.append(Input(STDIN, STDIN, None, None if error is None else f"{STDIN}: {error}"))
            continue
        path = Path(arg)
        try:
            is_dir = path.is_dir()
        except OSError:  # e.g. a name too long: the runtime names the file and the cause
            is_dir = False
        if not is_dir:
            inputs.append(Input(arg, arg, None))  # missing or unreadable files fail in the runtime, one line
            continue
        files = list(_walk(path, extensions, globs))
        if not files:
            what = f"matching {', '.join(globs)}" if globs else f"with an audio extension ({', '.join(extensions)})"
            inputs.append(Input(arg, arg, None, f"{arg}: no files {what} in this directory"))
        for rel in files:
            name = os.path.join(arg, *rel.parts)
            inputs.append(Input(name, name, rel))
    return inputs


_CHUNK = 1 << 20
STDIN_LIMIT_ENV = "I3D_EDGE_STDIN_LIMIT"  # bytes of standard input spooled at most (K, M, G, T suffixes)
DEFAULT_STDIN_LIMIT = 4 << 30  # 4 GiB: a WAV file cannot be larger; 3 hours of 48 kHz stereo is 2 GiB
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def stdin_limit() -> int:
    """The most bytes of standard input ``transcribe -`` spools: ``$I3D_EDGE_STDIN_LIMIT`` (e.g. ``8G``,
    ``500M`` or a number of bytes), else DEFAULT_STDIN_LIMIT. Raises AudioError on a bad value."""
    raw = os.environ.get(STDIN_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_STDIN_LIMIT
    text = raw.upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit() or len(number) > 15 or int(number) < 1:
        raise AudioError(f"{STDIN}: {STDIN_LIMIT_ENV}={raw[:40]!r} is not a size (e.g. 8G, 500M or bytes)")
    return int(number) * _UNITS[unit]


def _size_label(n: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


@contextmanager
def stdin_file(stream: BinaryIO | None = None, limit: int | None = None) -> Iterator[str]:
    """Copy standard input to a temporary file (read back block by block like any file, so a long
    recording is not held in memory) and yield a path to it; at most ``limit`` bytes (default
    :func:`stdin_limit`). Raises a one-line AudioError (naming ``-``) when standard input is larger,
    unreadable, or cannot be written (a full disk, a file size limit).

    The file never outlives the process: on Linux it is unlinked as soon as it is created and read
    through ``/proc/self/fd/N`` (the kernel frees it on any exit, SIGKILL included); elsewhere it is
    removed on exit, and SIGTERM is handled like Ctrl-C while it exists."""
    stream = stream if stream is not None else sys.stdin.buffer
    limit = stdin_limit() if limit is None else limit
    fd, path = tempfile.mkstemp(prefix="i3d-edge-stdin-")
    named = path
    if os.path.exists(f"/proc/self/fd/{fd}"):  # Linux: read the unlinked file through its descriptor
        with suppress(OSError):
            os.unlink(path)
            named = ""
    with ExitStack() as cleanup:
        cleanup.callback(os.close, fd)
        if named:
            cleanup.callback(_unlink_quietly, named)
            cleanup.enter_context(_sigterm_as_interrupt())
        _spool(stream, fd, limit)
        yield named or f"/proc/self/fd/{fd}"


def _unlink_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def _spool(stream: BinaryIO, fd: int, limit: int) -> None:
    """Copy ``stream`` to ``fd``, at most ``limit`` bytes; one-line AudioErrors naming ``-``."""
    total = 0
    while True:
        try:
            block = stream.read(_CHUNK)
        except OSError as exc:
            raise AudioError(f"{STDIN}: cannot read standard input ({exc.strerror or type(exc).__name__})") from None
        if not block:
            return
        total += len(block)
        if total > limit:
            raise AudioError(f"{STDIN}: standard input is larger than {_size_label(limit)} (the limit; set "
                             f"{STDIN_LIMIT_ENV}, e.g. {STDIN_LIMIT_ENV}=16G, to raise it)")
        try:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:  # a full disk (ENOSPC), a file size limit (EFBIG: Python ignores SIGXFSZ)
            raise AudioError(f"{STDIN}: cannot spool standard input to a temporary file "
                             f"({exc.strerror or type(exc).__name__})") from None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread within the block (so cleanup runs)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
