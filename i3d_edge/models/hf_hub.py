"""Hugging Face Hub model ids, as users type them (``facebook/wav2vec2-base-960h``).

A source that is not an existing path and looks like a model id is resolved with
``huggingface_hub.hf_hub_download``, file by file, into the user's Hugging Face cache: so
``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE=1``, ``HF_ENDPOINT`` and tokens work as for
``transformers``. Only the files the importer reads are fetched: ``config.json``, ``vocab.json``,
the feature-extractor settings (``preprocessor_config.json`` and/or ``processor_config.json``) and
the weights, ``model.safetensors`` (or its shards) in preference to ``pytorch_model.bin``, which is
read with ``torch.load(weights_only=True)`` like a local one. Every file comes from one commit: the
one ``config.json`` resolved to. The result is the cache's snapshot folder of that commit, which
:func:`i3d_edge.models.hf_import.read_source` then reads as any local directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import SourceModelError, first_line
from ..extras import install_hint

__all__ = ["download_model", "looks_like_model_id"]

# [namespace/]name as the Hub allows them: letters, digits, '-', '_', '.'; no '--' or '..'
_MODEL_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}")
_OPTIONAL = ("preprocessor_config.json", "processor_config.json")
_MAX_SHARDS = 1000


def looks_like_model_id(source: str) -> bool:
    """True for ``name`` or ``namespace/name`` that is no existing path (a local directory wins)."""
    return (bool(_MODEL_ID.fullmatch(source)) and "--" not in source and ".." not in source
            and not source.endswith(".") and not Path(source).exists())


def _hub() -> tuple[Any, Any]:
    try:
        from huggingface_hub import constants, hf_hub_download
    except ModuleNotFoundError:
        raise SourceModelError("reading a model id needs huggingface_hub, from the [import] extra: "
                               f"{install_hint('import')}") from None
    return hf_hub_download, constants


def download_model(model_id: str, revision: str | None = None) -> Path:
    """The local snapshot folder of ``model_id`` at ``revision`` with the files the importer reads.

    One-line :class:`SourceModelError` when the model, the revision or a required file cannot be had."""
    hf_hub_download, constants = _hub()
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = model_id + (f"@{revision}" if revision else "")
    is_offline = getattr(constants, "is_offline_mode", None)
    offline = bool(is_offline() if is_offline else constants.HF_HUB_OFFLINE)

    def fetch(name: str, rev: str | None, required: bool) -> Path | None:
        try:
            return Path(hf_hub_download(model_id, name, revision=rev))
        except GatedRepoError:
            raise SourceModelError(f"{where}: the model is gated on the Hugging Face Hub (accept its terms and "
                                   "log in with `hf auth login`)") from None
        except RepositoryNotFoundError:
            raise SourceModelError(f"{where}: no such model on the Hugging Face Hub (or it is private: log in "
                                   "with `hf auth login`), and no such local directory") from None
        except RevisionNotFoundError:
            raise SourceModelError(f"{where}: the model has no revision {revision!r}") from None
        except LocalEntryNotFoundError:
            if not required:
                return None
            if offline:
                raise SourceModelError(f"{where}: {name} is not in the Hugging Face cache and HF_HUB_OFFLINE is "
                                       "set (download it once without HF_HUB_OFFLINE)") from None
            raise SourceModelError(f"{where}: cannot reach the Hugging Face Hub and {name} is not in the cache "
                                   "(no such local directory either)") from None
        except EntryNotFoundError:
            if not required:
                return None
            raise SourceModelError(f"{where}: the model has no {name} (not a Hugging Face CTC model)") from None
        except (HfHubHTTPError, OSError, ValueError) as exc:  # server errors, a full disk, a bad revision name
            raise SourceModelError(f"{where}: cannot fetch {name} ({first_line(exc, 160)})") from None

    config = fetch("config.json", revision, True)
    assert config is not None
    snapshot = config.parent
    commit = snapshot.name  # every other file from the same commit
    fetch("vocab.json", commit, True)
    for name in _OPTIONAL:
        fetch(name, commit, False)
    if fetch("model.safetensors", commit, False) is not None:
        return snapshot
    index = fetch("model.safetensors.index.json", commit, False)
    if index is not None:
        for shard in _shards(index, where):
            fetch(shard, commit, True)
        return snapshot
    if fetch("pytorch_model.bin", commit, False) is None:
        raise SourceModelError(f"{where}: the model has neither model.safetensors nor pytorch_model.bin"
                               + (" in the Hugging Face cache (HF_HUB_OFFLINE is set)" if offline else ""))
    return snapshot


def _shards(index: Path, where: str) -> list[str]:
    """The shard file names of a safetensors index (plain names in the same folder only)."""
    try:
        data = json.loads(index.read_text(encoding="utf-8")) if index.stat().st_size < 10 << 20 else None
    except (OSError, ValueError):
        data = None
    shards = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(shards, dict) or not all(isinstance(v, str) for v in shards.values()):
        raise SourceModelError(f"{where}: model.safetensors.index.json has no weight_map")
    names = sorted(set(shards.values()))
    if len(names) > _MAX_SHARDS or not all(Path(n).name == n and n.endswith(".safetensors") for n in names):
        raise SourceModelError(f"{where}: model.safetensors.index.json names shards outside the model folder")
    return names
