"""Attach a word n-gram language model to an exported bundle (no torch needed).

The ARPA file is copied to ``lm/words.arpa`` inside the bundle, hashed into ``files`` and
described by the manifest's ``decoder`` section (:class:`i3d_edge.manifest.DecoderSpec`). The
bundle is changed atomically: the new manifest replaces the old one only after the copied
model has been loaded and checked, and a failure leaves the bundle as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import BundleError, ConfigError
from ..lm import NgramStats, build_arpa
from ..manifest import MANIFEST_NAME, DecoderSpec, load_manifest, parse_manifest, sha256_file
from ..tokens import normalize_text

__all__ = ["LM_RELPATH", "attach_language_model", "read_sentences"]

LM_RELPATH = "lm/words.arpa"


def read_sentences(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Normalised sentences of text files: one sentence per line, or ``id<TAB>text`` lines
    (``transcripts.tsv``); empty lines are skipped."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    text = normalize_text(line.split("\t", 1)[1] if "\t" in line else line)
                    if text:
                        yield text
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read text ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None


def attach_language_model(
    bundle: str | os.PathLike[str], *, arpa: str | os.PathLike[str] | None = None,
    sentences: Iterable[str] | None = None, order: int = 3, min_count: int = 1, prune: tuple[int, ...] = (),
    max_vocab: int | None = None, lm_weight: float = 1.0, word_score: float = 0.0, beam_size: int = 32,
    beam_threshold: float = 25.0,
) -> dict[str, Any]:
    """Put an ARPA model (given, or built from ``sentences``) into ``bundle``; returns the decoder section."""
    if (arpa is None) == (sentences is None):
        raise ConfigError("attach a language model from either an ARPA file or training sentences, not both")
    manifest = load_manifest(bundle)
    root = manifest.root
    spec = DecoderSpec(LM_RELPATH, lm_weight, word_score, beam_size, beam_threshold)  # validates the settings
    (root / "lm").mkdir(exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".words.", suffix=".arpa", dir=root / "lm")
    os.close(fd)
    tmp = Path(tmp_name)
    target = root / LM_RELPATH
    backup = root / (MANIFEST_NAME + ".bak")
    replaced_old = False
    try:
        stats: NgramStats | None = None
        if sentences is not None:
            stats = build_arpa(sentences, tmp, order=order, min_count=min_count, prune=prune, max_vocab=max_vocab)
        else:
            _copy_arpa(Path(arpa), tmp)  # type: ignore[arg-type]  # not None here
        data = dict(manifest.data)
        files = {rel: entry for rel, entry in data["files"].items() if rel != LM_RELPATH}
        files[LM_RELPATH] = {"sha256": sha256_file(tmp), "bytes": tmp.stat().st_size}
        data["files"] = files
        data["decoder"] = {**spec.to_dict(), "ngram": asdict(stats) if stats is not None else {"source": str(arpa)}}
        parse_manifest(data, root)  # the new manifest satisfies the contract
        _check_usable(tmp, manifest)
        shutil.copy2(root / MANIFEST_NAME, backup)
        os.replace(tmp, target)
        replaced_old = True
        _write_json(root / MANIFEST_NAME, data)
        load_manifest(root).verify(LM_RELPATH)
    except BaseException:
        if replaced_old:  # put the old manifest back; its files entries never named the new model
            os.replace(backup, root / MANIFEST_NAME)
            if manifest.decoder is None or manifest.decoder.lm != LM_RELPATH:
                target.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        _remove_if_empty(root / "lm")
        raise
    backup.unlink(missing_ok=True)
    return dict(data["decoder"])


def _copy_arpa(src: Path, dst: Path) -> None:
    try:
        with open(src, "rb") as f:
            head = f.read(4096)
        if src.suffix == ".gz" or b"\\data\\" not in head:
            raise ConfigError(f"{src}: not a plain-text ARPA language model (no \\data\\ header)")
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read the ARPA file ({exc.strerror or exc})") from None


def _check_usable(path: Path, manifest: Any) -> None:
    """Load the model as the runtime will (when flashlight-text is installed)."""
    from ..runtime.decoding import LanguageModel, lm_available

    if lm_available():
        try:
            LanguageModel(path, manifest.tokens)
        except BundleError as exc:
            raise ConfigError(str(exc).replace(str(path), "language model")) from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
