"""Checkpoint I/O: a plain dict of tensors, lists, strings and numbers, never pickled classes.

Layout of ``ckpt.pt`` (loaded with ``torch.load(path, weights_only=True)``)::

    {"format": "i3d-edge-checkpoint", "version": 1,
     "model_config": {...ModelConfig...}, "feature_config": {...FeatureConfig...},
     "tokens": ["<blank>", " ", ...], "state_dict": {name: tensor},
     "train_state": {...optional: step, optimizer, metrics...}}
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import CONFIG_VERSION, FeatureConfig, ModelConfig
from ..errors import CheckpointError, I3dEdgeError
from ..limits import LIMITS, min_weights
from ..tokens import TokenTable
from .i3d import I3DModel

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "check_zip_records", "load_checkpoint", "random_checkpoint",
           "save_checkpoint"]

CHECKPOINT_FORMAT = "i3d-edge-checkpoint"


@dataclass
class Checkpoint:
    model_config: ModelConfig
    feature_config: FeatureConfig
    tokens: TokenTable
    state_dict: dict[str, torch.Tensor]
    train_state: dict[str, Any] = field(default_factory=dict)

    def build_model(self) -> I3DModel:
        """The model with these weights, in eval mode; the config is checked against the weights
        present before the model is allocated."""
        try:
            LIMITS.check_frontend(self.model_config, self.feature_config)
        except I3dEdgeError as exc:
            raise CheckpointError(str(exc)) from None
        held = sum(t.numel() for t in self.state_dict.values())
        need = min_weights(self.model_config)
        if held < need:
            raise CheckpointError(f"the model config implies at least {need} weights but the state dict holds "
                                  f"only {held}")
        model = I3DModel(self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not match the model config: {_state_dict_cause(exc)}") from None
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CONFIG_VERSION,
            "model_config": self.model_config.to_dict(),
            "feature_config": self.feature_config.to_dict(),
            "tokens": list(self.tokens.tokens),
            "state_dict": self.state_dict,
            "train_state": self.train_state,
        }


def _state_dict_cause(exc: RuntimeError) -> str:
    """torch's multi-line load_state_dict error as one line: the header dropped, the first causes kept."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    causes = [ln for ln in lines if not ln.startswith("Error(s) in loading state_dict")] or lines
    return " ".join(causes)[:300]


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Write atomically: a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot write checkpoint: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(ckpt.to_dict(), fh)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # e.g. a full disk (torch reports it as a RuntimeError)
        Path(tmp).unlink(missing_ok=True)
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else "write failed (is the disk full?)"
        raise CheckpointError(f"{path}: cannot write checkpoint: {cause}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and validate a checkpoint; any problem is a one-line :class:`CheckpointError`."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as exc:  # a loop of symlinks, a name too long, no permission on a parent
        raise CheckpointError(f"{path}: cannot access the checkpoint ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file, expected a checkpoint file")
    check_zip_records(path, CheckpointError)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the one-line errors below say what matters
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"(?:unsupported|blocked|not an allowed)[^\n]*?GLOBAL ([\w.]+)|GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            name = unsafe.group(1) or unsafe.group(2)
            raise CheckpointError(f"{path}: refused: it carries a pickled Python object ({name}); only tensors and "
                                  "plain data are loaded") from None
        raise CheckpointError(f"{path}: corrupt or not a checkpoint file") from None
    except PermissionError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    except Exception as exc:  # torch.load raises many types on damaged files
        raise CheckpointError(f"{path}: corrupt or not a checkpoint file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an i3d-edge checkpoint")
    if data.get("version") != CONFIG_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint version {data.get('version')!r} (this build reads {CONFIG_VERSION})")
    try:
        state = data["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError("state_dict is not a mapping of tensors")
        ckpt = Checkpoint(
            model_config=ModelConfig.from_dict(data["model_config"]),
            feature_config=FeatureConfig.from_dict(data["feature_config"]),
            tokens=TokenTable.from_list(data["tokens"]),
            state_dict=state,
            train_state=data.get("train_state") or {},
        )
    except KeyError as exc:
        raise CheckpointError(f"{path}: missing field {exc.args[0]!r}") from None
    except I3dEdgeError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if len(ckpt.tokens) != ckpt.model_config.vocab_size:
        raise CheckpointError(
            f"{path}: {len(ckpt.tokens)} tokens but vocab_size {ckpt.model_config.vocab_size}")
    if ckpt.feature_config.n_mels != ckpt.model_config.n_mels:
        raise CheckpointError(f"{path}: feature n_mels does not match the model's")
    try:
        ckpt.build_model()
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return ckpt


_ZIP_SLACK = 1 << 20  # bytes any record or archive may unpack to beyond the ratio (tiny records shrink well)


def check_zip_records(path: Path, error: type[I3dEdgeError]) -> None:
    """Refuse a zip-format torch file (a checkpoint, ``pytorch_model.bin``) whose records would unpack to
    more than they may, before ``torch.load`` allocates anything: raise ``error`` (one line naming
    ``path``). A file that is not a zip archive (torch's legacy format) is left to ``torch.load``.

    torch writes every record stored (uncompressed). A compressed record may unpack to at most
    ``LIMITS.zip_ratio`` x its compressed size + 1 MiB, and all records together to at most that x the
    file's size + 1 MiB; each compressed record is then inflated in 1 MiB pieces (nothing kept) and must give
    exactly the size it declares. At most ``LIMITS.zip_records`` records.
    """
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            if not zipfile.is_zipfile(fh):
                return
            fh.seek(0)
            with zipfile.ZipFile(fh) as archive:
                records = archive.infolist()
                if len(records) > LIMITS.zip_records:
                    raise error(f"{path}: {len(records)} zip records, more than the {LIMITS.zip_records} allowed")
                total = 0
                for info in records:
                    _check_record(path, info, error)
                    total += info.file_size
                if total > LIMITS.zip_ratio * size + _ZIP_SLACK:
                    raise error(f"{path}: its zip records declare {total} bytes in all, more than "
                                f"{LIMITS.zip_ratio} x the file's {size} bytes")
                for info in records:
                    if info.compress_type != zipfile.ZIP_STORED:
                        _inflate_counting(path, archive, info, error)
    except (OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
        raise error(f"{path}: corrupt or unreadable zip archive ({type(exc).__name__})") from None


def _check_record(path: Path, info: zipfile.ZipInfo, error: type[I3dEdgeError]) -> None:
    """The declared sizes of one zip record: stored as they are, compressed within the ratio."""
    name = info.filename[:80].encode("unicode_escape").decode("ascii")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise error(f"{path}: zip record {name} is stored but declares {info.file_size} bytes for "
                        f"{info.compress_size}")
    elif info.file_size > LIMITS.zip_ratio * info.compress_size + _ZIP_SLACK:
        raise error(f"{path}: zip record {name} would unpack {info.compress_size} bytes to {info.file_size} "
                    f"(more than {LIMITS.zip_ratio} x; torch writes records uncompressed)")


def _inflate_counting(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                      error: type[I3dEdgeError]) -> None:
    """Inflate one compressed record piece by piece, keeping nothing: it must give its declared size."""
    actual = 0
    with archive.open(info) as stream:
        while block := stream.read(1 << 20):
            actual += len(block)
            if actual > info.file_size:
                break
    if actual != info.file_size:
        name = info.filename[:80].encode("unicode_escape").decode("ascii")
        raise error(f"{path}: zip record {name} declares {info.file_size} bytes but unpacks to "
                    f"{'more' if actual > info.file_size else actual}")


def random_checkpoint(cfg: ModelConfig, *, seed: int = 0, diverse_gates: bool = True,
                      feature_config: FeatureConfig | None = None) -> Checkpoint:
    """A randomly initialised checkpoint for tests and benchmarks.

    With ``diverse_gates`` the gate predictors get random output layers, so that different
    inputs choose different modules (a freshly initialised training model opens every gate).
    """
    torch.manual_seed(seed)
    model = I3DModel(cfg)
    if diverse_gates and cfg.gates != "none":
        predictors = [model.gate] if cfg.gates == "global" else list(model.local_gates)
        for pred in predictors:
            last = pred.mlp[2]
            torch.nn.init.normal_(last.weight, std=1.5 / cfg.gate_hidden ** 0.5)
            torch.nn.init.normal_(last.bias, std=1.5)
    tokens = TokenTable()
    if cfg.vocab_size != len(tokens):
        tokens = TokenTable(tokens.tokens[:1] + tuple(f"<{i}>" for i in range(1, cfg.vocab_size)))
    return Checkpoint(cfg, feature_config or FeatureConfig(n_mels=cfg.n_mels), tokens,
                      {k: v.detach().clone() for k, v in model.state_dict().items()})
