"""Archive-scale transcription on Ray Data (the ``[ray]`` extra): one Runtime per actor.

:func:`transcribe_dataset` maps a ``ray.data.Dataset`` of audio rows (a ``path`` column, or
``bytes`` as ``ray.data.read_binary_files(..., include_paths=True)`` gives them) to one row per
input: ``path, text, confidence, tokens, words, modules_executed, modules_total, executed_modules,
duration, processing_seconds, warnings, error``. An input that cannot be transcribed is a row with ``error`` set and
``text`` null, never a failed job; a worker that dies has its batch retried by Ray.

The bundle is read once on the driver and put in Ray's object store once; each actor copies it
to a private temporary directory and loads one Runtime from it, so worker nodes need neither the
bundle nor a shared filesystem (only ``i3d-edge[ray]`` installed).

:func:`transcribe_files` runs ``i3d-edge transcribe --ray``: documents rendered on the workers (by
the function the command line passes, the one its single-process path uses), each row handed to the
caller as it arrives (the command line writes the files), a Parquet table of the run's rows, and a
summary.

``ray`` is imported here only, never on the runtime's import path.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

    from ..runtime import Transcript

__all__ = ["DOCUMENT", "TABLE_NAME", "Render", "Summary", "connect", "transcribe_dataset", "transcribe_files"]

TABLE_NAME = "transcripts.parquet"  # the run's table, beside the per-input files
DOCUMENT = "document_"  # column prefix of the rendered documents (document_txt, ...)
# (format, input name, transcript) -> the document of that input in that format; it runs on the
# workers, so it must be picklable (a module-level function or a functools.partial of one)
Render = Callable[[str, str, "Transcript"], str]


def _schema(formats: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    timed = lambda key: pa.list_(pa.struct([(key, pa.string()), ("start", pa.float64()),  # noqa: E731
                                            ("end", pa.float64()), ("confidence", pa.float64())]))
    return pa.schema([
        ("path", pa.string()), ("text", pa.string()), ("confidence", pa.float64()), ("tokens", timed("token")),
        ("words", timed("word")), ("modules_executed", pa.int64()), ("modules_total", pa.int64()),
        ("executed_modules", pa.list_(pa.string())), ("duration", pa.float64()),
        ("processing_seconds", pa.float64()), ("warnings", pa.list_(pa.string())), ("error", pa.string()),
        *((DOCUMENT + f, pa.string()) for f in formats),
    ])


def _pack_bundle(model: str | os.PathLike[str] | None) -> dict[str, bytes]:
    """The bundle directory's regular files, relative path -> contents (read once, on the driver)."""
    from ..errors import BundleError
    from ..runtime.runtime import DEFAULT_BUNDLE

    root = Path(model) if model is not None else DEFAULT_BUNDLE
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory")
    files: dict[str, bytes] = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


class _Transcriber:
    """A Ray Data actor: unpacks the shipped bundle once, holds one Runtime, transcribes batches."""

    def __init__(self, bundle: list[Any], knobs: Mapping[str, Any], formats: Sequence[str],
                 render: Render | None) -> None:
        import ray

        from ..runtime import Runtime

        files: dict[str, bytes] = ray.get(bundle[0])  # one object, fetched once per node
        self._dir = tempfile.TemporaryDirectory(prefix="i3d-edge-bundle-")
        for rel, data in files.items():
            target = Path(self._dir.name, *rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.runtime = Runtime(self._dir.name, **knobs)
        self.formats = tuple(formats)
        self.render = render

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        columns = batch.column_names
        n = batch.num_rows
        paths = batch.column("path").to_pylist() if "path" in columns else [f"row {i}" for i in range(n)]
        names = batch.column("name").to_pylist() if "name" in columns else list(paths)
        blobs = batch.column("bytes").to_pylist() if "bytes" in columns else None
        rows: list[dict[str, Any]] = []
        read_from: list[str] = []  # the file each row was read from, to place the warnings
        with tempfile.TemporaryDirectory(prefix="i3d-edge-audio-") as tmp, \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sources = list(paths)
            if blobs is not None:  # bytes rows: spooled to files, read like any file, named by their path
                for i, blob in enumerate(blobs):
                    sources[i] = os.path.join(tmp, f"{i}{Path(str(paths[i])).suffix}")
                    Path(sources[i]).write_bytes(blob or b"")
            for result in self.runtime.iter_transcripts(sources):
                read_from.append(str(sources[result.index]))
                rows.append(self._row(str(names[result.index]), read_from[-1], result.transcript, result.error))
        for warning in caught:  # the audio reader's warnings name their input: on that row
            text = str(warning.message)
            for row, source in zip(rows, read_from, strict=True):
                if source in text:
                    row["warnings"].append(text.replace(str(source), row["path"]))
        return pa.Table.from_pylist(rows, schema=_schema(self.formats))

    def _row(self, name: str, source: str, t: Transcript | None, error: BaseException | None) -> dict[str, Any]:
        row: dict[str, Any] = {"path": name, "tokens": [], "words": [], "executed_modules": [], "warnings": []}
        if t is None:
            row["error"] = str(error).replace(source, name)
            return row
        row.update(text=t.text, confidence=t.confidence, tokens=[tok.to_dict() for tok in t.tokens],
                   words=[w.to_dict() for w in t.words], modules_executed=t.modules_executed,
                   modules_total=t.modules_total, executed_modules=list(t.executed_modules), duration=t.duration,
                   processing_seconds=t.timings.get("total", 0.0))
        if self.render is not None:
            for fmt in self.formats:
                row[DOCUMENT + fmt] = self.render(fmt, name, t)
        return row


def transcribe_dataset(ds: ray.data.Dataset | Iterable[str], model: str | os.PathLike[str] | None = None, *,
                       actors: int = 1, cpus_per_actor: float = 1.0, threads: int | None = None,
                       rows_per_batch: int = 8, formats: Sequence[str] = (), render: Render | None = None,
                       **knobs: Any) -> ray.data.Dataset:
    """A lazy Dataset of transcripts, one row per input row (see the module docstring).

    ``ds``: a Dataset with a ``path`` (and optionally ``bytes``, ``name``) column, or an iterable of
    paths. ``actors`` Runtime-holding actors of ``cpus_per_actor`` CPUs each run batches of
    ``rows_per_batch`` inputs with ``threads`` ONNX Runtime threads (default: the actor's CPUs).
    ``knobs``: further :class:`~i3d_edge.runtime.RuntimeOptions` (threshold, precision, ...),
    checked here on the driver. ``formats`` with ``render``: also a ``document_<format>`` column of
    each, ``render(format, name, transcript)``. Ray must be initialised (``ray.init``) or is
    started locally.
    """
    import ray
    import ray.data

    from ..runtime.options import RuntimeOptions

    if actors < 1 or rows_per_batch < 1 or cpus_per_actor <= 0:
        raise ValueError("actors and rows_per_batch must be >= 1 and cpus_per_actor > 0")
    if formats and render is None:
        raise ValueError("formats need render, the function that makes each document")
    knobs = {**knobs, "threads": threads if threads is not None else max(1, int(cpus_per_actor))}
    RuntimeOptions.build(**knobs)  # a bad option fails here, in one line, not in every actor
    if not isinstance(ds, ray.data.Dataset):
        ds = _items([{"path": os.fspath(p)} for p in ds], rows_per_batch)
    bundle = [ray.put(_pack_bundle(model))]  # in a list: the actors fetch the one object themselves
    return ds.map_batches(
        _Transcriber, fn_constructor_kwargs={"bundle": bundle, "knobs": knobs, "formats": tuple(formats),
                                             "render": render},
        batch_size=rows_per_batch, batch_format="pyarrow", num_cpus=cpus_per_actor,
        compute=ray.data.ActorPoolStrategy(size=actors))


def _items(rows: list[dict[str, str]], rows_per_batch: int) -> ray.data.Dataset:
    """The rows as a Dataset of blocks of about ``rows_per_batch`` rows: one block (one object
    put in the store) per task, not Ray's default of one block per row for a few hundred rows."""
    import ray.data

    return ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // rows_per_batch)))


def connect(address: str | None) -> None:
    """Join the cluster at ``address``; ``None`` or ``"auto"``: the one in ``RAY_ADDRESS`` or last
    started on this machine, else a new local one. Does nothing when Ray is already initialised."""
    import ray

    from ..errors import ClusterError, first_line

    if not ray.is_initialized():
        try:
            ray.init(address=None if address in (None, "auto") else address, log_to_driver=False)
        except Exception as exc:  # Ray's start-up timeout is a bare Exception
            raise ClusterError(f"cannot join the Ray cluster at {address or 'auto'}: {first_line(exc)}") from None


@dataclass(frozen=True)
class Summary:
    """What ``transcribe --ray`` did: inputs transcribed and failed, audio and wall time."""

    files: int
    errors: int
    audio_seconds: float
    wall_seconds: float
    modules_executed_mean: float
    modules_total: int

    def line(self) -> str:
        hours = self.audio_seconds / 3600
        rate = hours / (self.wall_seconds / 3600) if self.wall_seconds > 0 else 0.0
        return (f"done: {self.files} files, {hours:.3f} h audio, {self.errors} errors, "
                f"{self.modules_executed_mean:.1f}/{self.modules_total} modules executed on average, "
                f"{rate:.1f} audio hours per wall hour ({self.wall_seconds:.1f} s)")


def transcribe_files(jobs: Sequence[tuple[str, str]], on_row: Callable[[dict[str, Any]], None], *,
                     address: str | None, model: str | os.PathLike[str] | None, knobs: Mapping[str, Any],
                     formats: Sequence[str] = (), render: Render | None = None, table: Path | None = None,
                     actors: int | None = None, rows_per_batch: int = 8) -> Summary:
    """Transcribe ``jobs`` (name, path to read) on the Ray cluster at ``address`` (:func:`connect`):
    ``on_row`` receives each input's row as it arrives, with its ``document_<format>`` columns (so
    the caller writes each input's files while the run goes on, and an interrupted run keeps what
    it finished); ``table`` gets the run's rows, without the documents, at the end (Parquet,
    atomically). Each actor takes ``knobs["threads"]`` CPUs (default 1); ``actors`` defaults to as
    many as the cluster's CPUs hold."""
    import pyarrow as pa
    import ray
    import ray.data

    from ..errors import ClusterError, first_line

    start = time.perf_counter()
    tables: list[pa.Table] = []
    if jobs:
        connect(address)
        knobs = dict(knobs)
        cpus = int(knobs.pop("threads", None) or 1)
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        ds = _items([{"path": os.path.abspath(source), "name": name} for name, source in jobs], rows_per_batch)
        results = transcribe_dataset(ds, model, actors=actors, cpus_per_actor=cpus, threads=cpus,
                                     rows_per_batch=rows_per_batch, formats=formats, render=render, **knobs)
        try:
            for batch in results.iter_batches(batch_format="pyarrow", batch_size=None):
                assert isinstance(batch, pa.Table)  # batch_format="pyarrow"
                for row in batch.to_pylist():
                    on_row(row)
                tables.append(batch.drop_columns([DOCUMENT + f for f in formats]))
        except ray.exceptions.RayError as exc:  # retries spent, the cluster gone: what was done is kept
            raise ClusterError(f"the Ray run stopped after {sum(t.num_rows for t in tables)} of {len(jobs)} "
                               f"inputs: {first_line(exc)}") from None
    done = pa.concat_tables(tables) if tables else _schema(()).empty_table()
    if table is not None:
        _write_table(done, table)
    ok = [d for d, e in zip(done.column("duration").to_pylist(), done.column("error").to_pylist(), strict=True)
          if e is None]
    executed = [m for m in done.column("modules_executed").to_pylist() if m is not None]
    totals = [m for m in done.column("modules_total").to_pylist() if m is not None]
    return Summary(files=done.num_rows, errors=done.num_rows - len(ok), audio_seconds=float(sum(ok)),
                   wall_seconds=time.perf_counter() - start,
                   modules_executed_mean=sum(executed) / len(executed) if executed else 0.0,
                   modules_total=max(totals, default=0))


def _write_table(table: pa.Table, path: Path) -> None:
    """Parquet via a temporary file and a rename, like every output file."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
