"""What ``transcribe`` reads: files, directories of audio files (recursively) and ``-`` (stdin).

Expanding the command line never fails as a whole: a directory without audio, a second ``-``
or an unreadable stdin becomes that input's one-line error, and the other inputs go on.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["STDIN", "Input", "expand_inputs", "stdin_file"]

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


@contextmanager
def stdin_file(stream: BinaryIO | None = None) -> Iterator[str]:
    """Copy standard input to a temporary file (read back block by block like any file, so a
    long recording is not held in memory) and yield its path; removed on exit."""
    stream = stream if stream is not None else sys.stdin.buffer
    fd, path = tempfile.mkstemp(prefix="i3d-edge-stdin-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, _CHUNK)
        yield path
    finally:
        with suppress(OSError):
            os.unlink(path)
