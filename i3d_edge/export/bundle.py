"""``export_bundle``: checkpoint -> verified bundle directory, written atomically.

Steps: load the checkpoint (plain data, ``weights_only``), export one graph per role
(:mod:`.graphs`), optionally quantise each to int8 (:mod:`.quantize`), write ``manifest.json``
(a typed :class:`i3d_edge.manifest.Manifest`, the contract's one writer), verify against torch
(:mod:`.verify`), and only then rename the staging directory into place. Any failure,
KeyboardInterrupt included, removes the staging directory and leaves an existing bundle untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx

from .. import __version__
from ..bundle.signals import sigterm_as_interrupt
from ..config import SUBSAMPLING
from ..errors import BundleError, ExportError
from ..manifest import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    MANIFEST_NAME,
    Manifest,
    Variant,
    file_entry,
    gates_section,
    load_manifest,
    sha256_file,
    write_manifest,
)
from ..models.checkpoint import Checkpoint, load_checkpoint
from ._util import torch_threads
from .graphs import MAX_OPSET, MIN_OPSET, GraphSpec, export_graph, graph_specs, set_metadata
from .quantize import INT8, quantize_int8
from .verify import verify_bundle

__all__ = ["QUANTIZE_CHOICES", "export_bundle"]

QUANTIZE_CHOICES = ("int8",)
_SELF_DESCRIBING = ("frontend", "head", "monolithic")  # graphs that also carry features, tokens, gates


def export_bundle(
    checkpoint: str | os.PathLike[str] | Checkpoint,
    out_dir: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    monolithic: bool = False,
    simplify: bool = True,
    verify: bool = True,
    force: bool = False,
    opset: int = MIN_OPSET,
) -> dict[str, Any]:
    """Export ``checkpoint`` (a ckpt.pt path or a loaded Checkpoint) as a bundle at ``out_dir``.

    quantize: None or "int8" (fp32 graphs are always written; int8 ones are added beside them).
    monolithic: also write the whole model as one graph (every module executed).
    simplify: run onnxsim on every graph. verify: check parity with torch (fails the export).
    force: replace an existing bundle at ``out_dir`` (only once the new one is complete).
    Returns the manifest dict. Raises CheckpointError / ExportError with one-line messages.
    """
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ExportError(f"unsupported quantisation {quantize!r} (choose: {', '.join(QUANTIZE_CHOICES)})")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"unsupported opset {opset!r} (choose {MIN_OPSET} to {MAX_OPSET})")
    source: dict[str, str | None] = {"path": None, "sha256": None}  # a loaded Checkpoint has no file
    if isinstance(checkpoint, Checkpoint):
        ckpt = checkpoint
    else:
        ckpt = load_checkpoint(checkpoint)
        source = {"path": Path(checkpoint).name, "sha256": sha256_file(checkpoint)}
    out = Path(os.path.abspath(out_dir))  # normalised ("." has a name and a parent), symlinks kept
    _check_target(out, force)
    # --no-verify skips parity, not sanity
    _check_finite(ckpt, "checkpoint" if isinstance(checkpoint, Checkpoint) else str(checkpoint))
    model = ckpt.build_model()
    specs = graph_specs(model, monolithic=monolithic)
    staged: list[str] = []  # the staging folder: messages name the bundle instead (the folder is removed)
    try:
        with sigterm_as_interrupt(), _staging(out, replace=force) as tmp, torch_threads(1), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes: the error line says it
            staged.append(str(tmp))
            manifest = dataclasses.replace(
                _write_graphs(tmp, ckpt, specs, quantize=quantize, simplify=simplify, opset=opset),
                provenance=_provenance(opset, simplify, source),
                verification={"status": "pending" if verify else "skipped"})
            write_manifest(manifest)  # the runtime reads it during verification
            if verify:
                report = verify_bundle(tmp, model, specs, manifest.variants, ckpt.feature_config)
                manifest = dataclasses.replace(manifest, verification=report)
                write_manifest(manifest)
            load_manifest(tmp)  # the bundle must satisfy the contract its readers enforce
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the bundle ({exc.strerror or exc})") from None
    except ExportError as exc:  # every step's message, named after the bundle being written
        raise ExportError(f"{out}: {_unstaged(str(exc), staged, out)}") from exc.__cause__
    except BundleError as exc:  # the runtime's checks of the staged bundle (e.g. a probe run giving infinities)
        message = _unstaged(str(exc), staged, out)
        raise ExportError(message if message.startswith(str(out)) else f"{out}: {message}") from None
    return manifest.to_dict()


def _check_finite(ckpt: Checkpoint, name: str) -> None:
    """Refuse weights with NaN or infinite values: the bundle would print NaN for every input."""
    import torch

    for key, tensor in ckpt.state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ExportError(f"{name}: weight {key!r} has NaN or infinite values; refusing to export it")


def _write_graphs(root: Path, ckpt: Checkpoint, specs: list[GraphSpec], *, quantize: str | None,
                  simplify: bool, opset: int) -> Manifest:
    """Export (and quantise) every graph under ``root``; the manifest without provenance."""
    cfg = ckpt.model_config
    gates = gates_section(cfg.gates, cfg.gate_threshold, cfg.module_names)
    variants = [Variant("fp32", None, {})] + ([Variant("int8", dict(INT8), {})] if quantize == "int8" else [])
    for variant in variants:
        (root / variant.name).mkdir()
    for spec in specs:
        fp32 = export_graph(spec, cfg, opset=opset, simplify=simplify)
        for variant in variants:
            graph = fp32 if variant.quantization is None else quantize_int8(fp32, spec.key, spec.role)
            set_metadata(graph, _graph_metadata(spec, ckpt, gates, opset, variant.name, variant.quantization))
            rel = f"{variant.name}/{spec.filename}"
            onnx.save(graph, root / rel)
            variant.graphs[spec.key] = rel
    files = {rel: file_entry(root / rel) for variant in variants for rel in variant.graphs.values()}
    return Manifest(root, cfg, ckpt.feature_config, ckpt.tokens, cfg.gates, cfg.gate_threshold, cfg.module_names,
                    "fp32", {variant.name: variant for variant in variants}, files)


def _graph_metadata(spec: GraphSpec, ckpt: Checkpoint, gates: dict[str, Any], opset: int, variant: str,
                    quantization: dict[str, Any] | None) -> dict[str, str]:
    """ONNX metadata_props: every graph says what it is; the frontend, head and monolithic graphs
    also describe the whole bundle (features, tokens, gates), sherpa-onnx style."""
    cfg = ckpt.model_config
    meta = {
        "model_type": "i3d-edge",
        "bundle_format": BUNDLE_FORMAT,
        "bundle_version": str(BUNDLE_VERSION),
        "i3d_edge_version": __version__,
        "role": spec.role,
        "module": spec.key,
        "variant": variant,
        "opset": str(opset),
        "model_config": json.dumps(cfg.to_dict(), sort_keys=True),
    }
    if spec.layer is not None:
        meta["layer"] = str(spec.layer)
    if quantization is not None:
        meta["quantization"] = json.dumps(quantization, sort_keys=True)
    if spec.role in _SELF_DESCRIBING:
        fc = ckpt.feature_config
        meta.update({
            "feature_config": json.dumps(fc.to_dict(), sort_keys=True),
            "sample_rate": str(fc.sample_rate),
            "n_mels": str(fc.n_mels),
            "subsampling_factor": str(cfg.waveform.stride if cfg.waveform else SUBSAMPLING),
            "min_feature_frames": str(fc.min_samples if cfg.waveform else 7),
            "gates": json.dumps(gates, sort_keys=True),
            "tokens": json.dumps(list(ckpt.tokens.tokens), ensure_ascii=False),
            "vocab_size": str(cfg.vocab_size),
            "blank_id": "0",
        })
    return meta


def _provenance(opset: int, simplify: bool, source: dict[str, str | None]) -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "i3d_edge": __version__,
        "torch": version("torch"),
        "onnx": version("onnx"),
        "onnxruntime": version("onnxruntime"),
        "onnxsim": version("onnxsim") if simplify else None,
        "exporter": "torch.onnx.export (TorchScript)",
        "opset": opset,
        "simplified": simplify,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source_checkpoint": source,
    }


def _unstaged(message: str, staged: list[str], out: Path) -> str:
    """``message`` with the (removed) staging folder's path replaced by the bundle's."""
    return message.replace(staged[0], str(out)) if staged else message


# ---------------------------------------------------------------------------- atomic output
def _is_bundle(path: Path) -> bool:
    """Whether ``path`` holds an i3d-edge bundle (any version): the only thing --force replaces."""
    try:
        data = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT


def _check_target(out: Path, force: bool) -> None:
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise ExportError(f"{out}: already exists (use --force to replace it)")
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory; refusing to replace it")
    if any(out.iterdir()) and not _is_bundle(out):
        raise ExportError(f"{out}: exists and is not an i3d-edge bundle; refusing to replace it, even with --force")


def _make_parents(path: Path) -> list[Path]:
    """``mkdir -p path``; returns the directories created, outermost first."""
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    for p in missing:
        p.mkdir()
    return missing


@contextlib.contextmanager
def _staging(out: Path, *, replace: bool) -> Iterator[Path]:
    """A fresh directory beside ``out`` (same filesystem); renamed to ``out`` when the body
    succeeds, removed (with any parents created for it) when it raises anything."""
    created: list[Path] = []
    try:
        created = _make_parents(out.parent)
        _remove_stale(out)
        # the staging name carries the exporter's pid, so the next export can tell a killed one's leftovers
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: a bundle is readable by all, as umask allows
    except OSError as exc:
        _remove_empty(created)
        raise ExportError(f"cannot create the output directory ({exc.strerror or exc})") from None
    try:
        yield tmp
        _commit(tmp, out, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale(out: Path) -> None:
    """Remove the staging directories (``.NAME.partial-PID-*``) of exports to ``out`` whose process is gone
    (killed with SIGKILL or a power cut); those of a live export are left alone."""
    prefix = f".{out.name}.partial-"
    for staging in [p for p in out.parent.iterdir() if p.name.startswith(prefix)]:
        pid = staging.name[len(prefix):].split("-", 1)[0]
        if staging.is_symlink() or not staging.is_dir() or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid that cannot be checked): not ours to judge
    return True


def _commit(tmp: Path, out: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and deleted last."""
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    if not replace:
        raise ExportError("appeared during the export; not replacing it (use --force)")
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):
            d.rmdir()
