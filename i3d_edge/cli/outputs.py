"""What ``transcribe`` writes: documents per format, output file names, atomic writes.

``--output-dir DIR`` writes one file per input and format, named after the input (``a.wav`` ->
``DIR/a.txt``; a file found in a directory keeps its sub-path below it); ``-o FILE`` writes the
one input's document to FILE. A file is written to a temporary name beside it and renamed
over the target, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ..manifest import json_safe
from .inputs import STDIN, Input

if TYPE_CHECKING:
    from ..runtime import Transcript

__all__ = ["CUE_FORMATS", "FORMATS", "SUFFIXES", "OutputExistsError", "OutputFormat", "Targets", "format_of_suffix",
           "parse_formats", "plan_targets", "publish", "render", "write_atomic"]


class OutputFormat(str, Enum):
    """The formats, by whisper's names; ``text`` is kept as another name of ``txt``."""

    txt = "txt"
    json = "json"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    text = "txt"  # alias: OutputFormat.text is OutputFormat.txt

    @classmethod
    def _missing_(cls, value: object) -> OutputFormat | None:
        return cls.txt if value == "text" else None


FORMATS = tuple(f.value for f in OutputFormat)  # txt, json, srt, vtt, tsv (aliases are not listed)
ALIASES = {"text": "txt"}
SUFFIXES = {f: f".{f}" for f in FORMATS}  # txt -> .txt, ...
CUE_FORMATS = (OutputFormat.srt, OutputFormat.vtt, OutputFormat.tsv)  # built from cues (--max-line-chars)
STDIN_STEM = "stdin"  # output files of `-` are DIR/stdin.txt, ...


def format_of_suffix(path: Path) -> OutputFormat | None:
    """The format a file name's suffix stands for (``talk.srt`` -> srt), None for any other suffix."""
    suffix = path.suffix.lower()
    return next((OutputFormat(f) for f, s in SUFFIXES.items() if s == suffix), None)


def parse_formats(values: Sequence[str] | None, output: Path | None) -> list[OutputFormat]:
    """``--format`` values (repeated and/or comma-separated, ``all``) -> formats in a fixed order.

    Without ``--format``, ``-o FILE``'s suffix picks the format (``.srt`` -> srt), else txt.
    Raises ValueError with the message to show."""
    if not values:
        return [(format_of_suffix(output) if output is not None else None) or OutputFormat.txt]
    chosen: set[str] = set()
    for value in values:
        for part in (p.strip().lower() for p in value.split(",")):
            part = ALIASES.get(part, part)
            if part == "all":
                chosen.update(FORMATS)
            elif part in FORMATS:
                chosen.add(part)
            else:
                raise ValueError(f"--format: unknown format {part!r} (choose from {', '.join(FORMATS)} or all; "
                                 "text is txt)")
    return [OutputFormat(f) for f in FORMATS if f in chosen]


def render(fmt: OutputFormat, name: str, result: Transcript, max_chars: int | None = None) -> str:
    """The whole document of one input in ``fmt``, ending with a newline (an empty srt is empty);
    ``max_chars``: the longest subtitle line of srt, vtt and tsv cues (default 42)."""
    if fmt is OutputFormat.json:
        document = json_safe({"audio": name, **result.to_dict()})
        return json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt in CUE_FORMATS:
        from ..runtime.subtitles import MAX_CUE_CHARS, to_srt, to_tsv, to_vtt

        write = {OutputFormat.srt: to_srt, OutputFormat.vtt: to_vtt, OutputFormat.tsv: to_tsv}[fmt]
        return write(result, MAX_CUE_CHARS if max_chars is None else max_chars)
    return result.text + "\n"


@dataclass(frozen=True)
class Targets:
    """Where one input's documents go (format -> file), or why it is not transcribed."""

    files: dict[OutputFormat, Path]  # only the files to write (existing ones left out with --skip-existing)
    error: str | None = None  # refused (an existing output without --force, a clash of names)
    skip: bool = False  # every output exists and --skip-existing was given


def _stem(inp: Input) -> Path:
    if inp.relative is not None:
        return inp.relative.with_suffix("") if inp.relative.suffix else inp.relative
    if inp.name == STDIN:
        return Path(STDIN_STEM)
    name = Path(inp.name).name
    return Path(Path(name).stem if Path(name).suffix else name)


def _same_file(a: str, b: str) -> bool:
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:
        return False


def plan_targets(inputs: Sequence[Input], formats: Sequence[OutputFormat], *, output_dir: Path | None,
                 output: Path | None, force: bool, skip_existing: bool) -> list[Targets]:
    """One Targets per input (same order), for ``--output-dir`` or ``-o``."""
    owner: dict[Path, str] = {}  # output file -> the input it belongs to
    plans: list[Targets] = []
    sources = _identities(inputs)
    for inp in inputs:
        if output is not None:
            wanted = {formats[0]: output}
        else:
            assert output_dir is not None
            stem = output_dir / _stem(inp)
            wanted = {f: stem.with_name(stem.name + SUFFIXES[f.value]) for f in formats}
        unsafe = _unsafe_target(wanted.values(), sources, output_dir)
        if unsafe is not None:
            plans.append(Targets({}, f"{inp.name}: {unsafe}"))
            continue
        clash = next((p for p in wanted.values() if p in owner), None)
        if clash is not None:
            why = ("given more than once" if _same_file(owner[clash], inp.name) else
                   f"its output {clash} would overwrite that of {owner[clash]} (same name); transcribe them apart")
            plans.append(Targets({}, f"{inp.name}: {why}"))
            continue
        owner.update(dict.fromkeys(wanted.values(), inp.name))
        existing = [p for p in wanted.values() if p.exists() or p.is_symlink()]
        if existing and skip_existing:
            todo = {f: p for f, p in wanted.items() if p not in existing}
            plans.append(Targets(todo, skip=not todo))
        elif existing and not force:
            plans.append(Targets({}, f"{inp.name}: {existing[0]} exists (--force overwrites, --skip-existing "
                                     "skips inputs already done)"))
        else:
            plans.append(Targets(wanted))
    return plans


def _identities(inputs: Sequence[Input]) -> set[tuple[int, int]]:
    """(device, inode) of every input file that exists: no output may be one of them."""
    found: set[tuple[int, int]] = set()
    for inp in inputs:
        if inp.source != STDIN:
            with suppress(OSError, ValueError):
                st = os.stat(inp.source)
                found.add((st.st_dev, st.st_ino))
    return found


def _unsafe_target(paths: Iterable[Path], sources: set[tuple[int, int]], output_dir: Path | None) -> str | None:
    """Why writing these outputs would be unsafe (an input file would be overwritten, a symlinked
    folder below the output directory followed), or None."""
    for path in paths:
        with suppress(OSError, ValueError):
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in sources:
                return f"its output {path} is an input file; choose another output name or folder"
        if output_dir is not None:
            folder = output_dir
            for part in path.relative_to(output_dir).parts[:-1]:
                folder = folder / part
                if folder.is_symlink():
                    return f"{folder} is a symlink inside the output directory (not followed)"
    return None


class OutputExistsError(FileExistsError):
    """An output that appeared after the run checked for it (another run claimed the name)."""


def publish(path: Path, text: str, *, root: Path | None = None, overwrite: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all, claiming the name atomically.

    The text goes to a new temporary file beside the target (created exclusively, never through a
    planted symlink), then is renamed over the target with ``overwrite``, or else hard-linked to the
    target name, which fails when the name exists: of two runs writing one name, the second fails
    (OutputExistsError) instead of silently replacing the first's result. ``root`` (the output
    directory): the folders between it and ``path`` are created and entered without following
    symlinks, so nothing is written outside it. Raises OSError."""
    base = root if root is not None else path.parent
    parts = path.relative_to(base).parts if root is not None else (path.name,)
    base.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    folder = os.open(base, flags)
    try:
        for part in parts[:-1]:
            with suppress(FileExistsError):
                os.mkdir(part, dir_fd=folder)
            try:
                inner = os.open(part, flags | getattr(os, "O_NOFOLLOW", 0), dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, "a symlink or file inside the output directory is in the way "
                                  "(not followed)", str(path)) from None
                raise
            os.close(folder)
            folder = inner
        _publish_in(folder, parts[-1], text, overwrite, path)
    finally:
        os.close(folder)


def _publish_in(folder: int, name: str, text: str, overwrite: bool, shown: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    tmp = f".{name[:200]}.{secrets.token_hex(6)}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) |
                 getattr(os, "O_CLOEXEC", 0), 0o666 & ~umask, dir_fd=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(shown))
        if overwrite:
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
            return
        try:
            os.link(tmp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError:
            raise OutputExistsError(errno.EEXIST, "it exists: another run wrote it meanwhile (--force overwrites)",
                                    str(shown)) from None
        except OSError as exc:  # a file system without hard links: claim the name, then replace it
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=folder))
            except FileExistsError:
                raise OutputExistsError(errno.EEXIST, "it exists: another run wrote it meanwhile (--force "
                                        "overwrites)", str(shown)) from None
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
            return
        os.unlink(tmp, dir_fd=folder)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same directory and a rename:
    readers see the old file or the whole new one, never a part. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(21, "is a directory", str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
