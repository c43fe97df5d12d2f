"""Archive-scale transcription on Ray Data (the ``[ray]`` extra): one Runtime per actor.

:func:`transcribe_dataset` maps a ``ray.data.Dataset`` of audio rows (a ``path`` column, or
``bytes`` as ``ray.data.read_binary_files(..., include_paths=True)`` gives them) to one row per
input: ``path, text, tokens, words, modules_executed, modules_total, executed_modules, duration,
processing_seconds, error``. An input that cannot be transcribed is a row with ``error`` set and
``text`` null, never a failed job; a worker that dies has its batch retried by Ray.

The bundle is read once on the driver and put in Ray's object store once; each actor copies it
to a private temporary directory and loads one Runtime from it, so worker nodes need neither the
bundle nor a shared filesystem (only ``i3d-edge[ray]`` installed).

:func:`transcribe_files` is ``i3d-edge transcribe --ray``: the same output files as the
single-process command (documents rendered by the same code on the workers, written atomically
by the driver as rows arrive), a Parquet table of the run's rows, and a summary.

``ray`` is imported here only, never on the runtime's import path.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

    from ..runtime import Transcript

__all__ = ["TABLE_NAME", "Summary", "connect", "transcribe_dataset", "transcribe_files"]

TABLE_NAME = "transcripts.parquet"  # the run's table, beside the per-input files
_DOC = "document_"  # column prefix of the rendered documents (the CLI's output files)


def _schema(formats: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    timed = lambda key: pa.list_(pa.struct([(key, pa.string()), ("start", pa.float64()),  # noqa: E731
                                            ("end", pa.float64())]))
    return pa.schema([
        ("path", pa.string()), ("text", pa.string()), ("tokens", timed("token")), ("words", timed("word")),
        ("modules_executed", pa.int64()), ("modules_total", pa.int64()),
        ("executed_modules", pa.list_(pa.string())), ("duration", pa.float64()),
        ("processing_seconds", pa.float64()), ("error", pa.string()),
        *((_DOC + f, pa.string()) for f in formats),
    ])


def _words(result: Transcript) -> list[dict[str, Any]]:
    """Tokens grouped into words (a " " token separates them): text, first start, last end."""
    words: list[dict[str, Any]] = []
    current: list[Any] = []
    for tok in [*result.tokens, None]:
        if tok is None or tok.token == " ":
            if current:
                words.append({"word": "".join(t.token for t in current), "start": current[0].start,
                              "end": current[-1].end})
            current = []
        else:
            current.append(tok)
    return words


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

    def __init__(self, bundle: list[Any], knobs: Mapping[str, Any], formats: Sequence[str]) -> None:
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

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from ..cli.outputs import OutputFormat, render

        columns = batch.column_names
        n = batch.num_rows
        paths = batch.column("path").to_pylist() if "path" in columns else [f"row {i}" for i in range(n)]
        names = batch.column("name").to_pylist() if "name" in columns else list(paths)
        blobs = batch.column("bytes").to_pylist() if "bytes" in columns else None
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="i3d-edge-audio-") as tmp:
            sources = list(paths)
            if blobs is not None:  # bytes rows: spooled to files, read like any file, named by their path
                for i, blob in enumerate(blobs):
                    sources[i] = os.path.join(tmp, f"{i}{Path(str(paths[i])).suffix}")
                    Path(sources[i]).write_bytes(blob or b"")
            for result in self.runtime.iter_transcripts(sources):
                name = str(names[result.index])
                row: dict[str, Any] = {"path": name, "tokens": [], "words": [], "executed_modules": []}
                if result.transcript is None:
                    row["error"] = str(result.error).replace(str(sources[result.index]), name)
                    rows.append(row)
                    continue
                t = result.transcript
                row.update(text=t.text, tokens=[tok.to_dict() for tok in t.tokens], words=_words(t),
                           modules_executed=t.modules_executed, modules_total=t.modules_total,
                           executed_modules=list(t.executed_modules), duration=t.duration,
                           processing_seconds=t.timings.get("total", 0.0))
                for fmt in self.formats:
                    row[_DOC + fmt] = render(OutputFormat(fmt), name, t)
                rows.append(row)
        return pa.Table.from_pylist(rows, schema=_schema(self.formats))


def transcribe_dataset(ds: ray.data.Dataset | Iterable[str], model: str | os.PathLike[str] | None = None, *,
                       actors: int = 1, cpus_per_actor: float = 1.0, threads: int | None = None,
                       rows_per_batch: int = 8, formats: Sequence[str] = (), **knobs: Any) -> ray.data.Dataset:
    """A lazy Dataset of transcripts, one row per input row (see the module docstring).

    ``ds``: a Dataset with a ``path`` (and optionally ``bytes``, ``name``) column, or an iterable of
    paths. ``actors`` Runtime-holding actors of ``cpus_per_actor`` CPUs each run batches of
    ``rows_per_batch`` inputs with ``threads`` ONNX Runtime threads (default: the actor's CPUs).
    ``knobs``: further :class:`~i3d_edge.runtime.RuntimeOptions` (threshold, precision, ...),
    checked here on the driver. ``formats``: also render the CLI's documents (text, json, srt, vtt)
    into ``document_<format>`` columns. Ray must be initialised (``ray.init``) or is started locally.
    """
    import ray
    import ray.data

    from ..runtime.options import RuntimeOptions

    if actors < 1 or rows_per_batch < 1 or cpus_per_actor <= 0:
        raise ValueError("actors and rows_per_batch must be >= 1 and cpus_per_actor > 0")
    knobs = {**knobs, "threads": threads if threads is not None else max(1, int(cpus_per_actor))}
    RuntimeOptions.build(**knobs)  # a bad option fails here, in one line, not in every actor
    if not isinstance(ds, ray.data.Dataset):
        ds = ray.data.from_items([{"path": os.fspath(p)} for p in ds])
    bundle = [ray.put(_pack_bundle(model))]  # in a list: the actors fetch the one object themselves
    return ds.map_batches(
        _Transcriber, fn_constructor_kwargs={"bundle": bundle, "knobs": knobs, "formats": tuple(formats)},
        batch_size=rows_per_batch, batch_format="pyarrow", num_cpus=cpus_per_actor,
        compute=ray.data.ActorPoolStrategy(size=actors))


def connect(address: str | None) -> None:
    """Join the cluster at ``address``; ``None`` or ``"auto"``: the one in ``RAY_ADDRESS`` or last
    started on this machine, else a new local one. Does nothing when Ray is already initialised."""
    import ray

    if not ray.is_initialized():
        ray.init(address=None if address in (None, "auto") else address, log_to_driver=False)


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


def transcribe_files(jobs: Sequence[tuple[str, str, Mapping[Any, Path]]], output_dir: Path, *,
                     address: str | None, model: str | None, knobs: Mapping[str, Any],
                     on_error: Callable[[str], None], actors: int | None = None, rows_per_batch: int = 8) -> Summary:
    """Transcribe ``jobs`` (name, path to read, {OutputFormat: output file}) on Ray: each input's
    documents are written atomically as its row arrives (so an interrupted run keeps what it
    finished); ``output_dir/transcripts.parquet`` gets this run's rows at the end. ``on_error``
    receives each failure as one line (``NAME: cause``). Each actor takes ``knobs["threads"]`` CPUs
    (default 1); ``actors`` defaults to as many as the cluster's CPUs hold."""
    import pyarrow as pa
    import ray
    import ray.data

    from ..cli.outputs import write_atomic

    start = time.perf_counter()
    formats = sorted({fmt.value for _, _, files in jobs for fmt in files})
    targets = {name: files for name, _, files in jobs}
    tables: list[pa.Table] = []
    if jobs:
        connect(address)
        knobs = dict(knobs)
        cpus = int(knobs.pop("threads", None) or 1)
        actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        ds = ray.data.from_items([{"path": os.path.abspath(source), "name": name} for name, source, _ in jobs])
        results = transcribe_dataset(ds, model, actors=actors, cpus_per_actor=cpus, threads=cpus,
                                     rows_per_batch=rows_per_batch, formats=formats, **knobs)
        for table in results.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in table.to_pylist():
                name = row["path"]
                if row["error"] is not None:
                    on_error(row["error"])
                    continue
                for fmt, path in targets[name].items():
                    try:
                        write_atomic(path, row[_DOC + fmt.value])
                    except OSError as exc:
                        on_error(f"{name}: cannot write {path} ({exc.strerror or type(exc).__name__})")
                        break
            tables.append(table.drop_columns([_DOC + f for f in formats]))
    table = pa.concat_tables(tables) if tables else _schema(()).empty_table()
    _write_table(table, output_dir / TABLE_NAME)
    ok = [d for d, e in zip(table.column("duration").to_pylist(), table.column("error").to_pylist(), strict=True)
          if e is None]
    executed = [m for m in table.column("modules_executed").to_pylist() if m is not None]
    totals = [m for m in table.column("modules_total").to_pylist() if m is not None]
    return Summary(files=table.num_rows, errors=table.num_rows - len(ok), audio_seconds=float(sum(ok)),
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
