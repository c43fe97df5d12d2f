"""Attach a word n-gram language model to an exported bundle (no torch needed).

The ARPA file goes to ``lm/words-<sha256 prefix>.arpa`` inside the bundle, is hashed into
``files`` and described by the manifest's ``decoder`` section
(:class:`i3d_edge.manifest.DecoderSpec`). Replacing ``manifest.json`` is the one commit point:
the model file has a new, content-addressed name (nothing the old manifest lists is touched
before the commit), every temporary file is created with ``mkstemp`` (never through a planted
symlink), and a previous model is deleted only after the commit. A failure leaves the bundle
as it was.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import BundleError, ConfigError
from ..lm import MAX_ARPA_ORDER, MAX_WORD_CHARS, MIN_ARPA_ORDER, UNK, NgramStats, build_arpa, validate_arpa
from ..manifest import (
    DEFAULT_BEAM_THRESHOLD,
    DecoderSpec,
    Manifest,
    load_manifest,
    parse_manifest,
    sha256_file,
    write_manifest,
)
from ..tokens import SEPARATOR, normalize_text
from .signals import sigterm_as_interrupt

__all__ = ["MAX_ORDER", "MAX_TEXT_BYTES", "MIN_ORDER", "TextFiles", "attach_language_model", "read_sentences",
           "set_decoder_settings"]

LM_DIR = "lm"
MIN_ORDER, MAX_ORDER = MIN_ARPA_ORDER, MAX_ARPA_ORDER  # what KenLM (as built in flashlight-text) loads
MAX_TEXT_BYTES = 256 << 20  # training text read in all (the model is built in memory)
MAX_LINE_CHARS = 1 << 16  # characters of one line of training text


class TextFiles:
    """Normalised sentences of text files, read within bounds: one sentence per line, or
    ``id<TAB>text`` lines (``transcripts.tsv``); empty lines are skipped. At most MAX_TEXT_BYTES
    in all, MAX_LINE_CHARS per line and MAX_WORD_CHARS per word, so ``/dev/zero`` or a file of one
    endless word is a one-line error, not gigabytes of memory."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = [Path(p) for p in paths]

    @property
    def where(self) -> str:
        """The files, for messages."""
        return ", ".join(map(str, self.paths[:3])) + (f" (+{len(self.paths) - 3} more)" if len(self.paths) > 3 else "")

    def __iter__(self) -> Iterator[str]:
        total = 0
        for path in self.paths:
            try:
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_CHARS + 1), ""), start=1):
                        if len(line) > MAX_LINE_CHARS:
                            raise ConfigError(f"{path}: line {number} is longer than {MAX_LINE_CHARS} characters")
                        total += len(line)
                        if total > MAX_TEXT_BYTES:
                            raise ConfigError(f"{path}: more than {MAX_TEXT_BYTES >> 20} MiB of training text "
                                              "in all")
                        text = normalize_text(line.split("\t", 1)[1] if "\t" in line else line)
                        if any(len(w) > MAX_WORD_CHARS for w in text.split()):
                            raise ConfigError(f"{path}: line {number} has a word longer than {MAX_WORD_CHARS} "
                                              "characters")
                        if text:
                            yield text
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read text ({exc.strerror or exc})") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{path}: not UTF-8 text") from None


def read_sentences(paths: Iterable[str | os.PathLike[str]]) -> TextFiles:
    """Normalised sentences of text files, read within bounds (see :class:`TextFiles`)."""
    return TextFiles(paths)


def attach_language_model(
    bundle: str | os.PathLike[str], *, arpa: str | os.PathLike[str] | None = None,
    sentences: Iterable[str] | None = None, order: int = 3, min_count: int = 1, prune: tuple[int, ...] = (),
    max_vocab: int | None = None, lm_weight: float = 1.0, word_score: float = 0.0, beam_size: int = 32,
    beam_threshold: float = DEFAULT_BEAM_THRESHOLD,
) -> dict[str, Any]:
    """Put an ARPA model (given, or built from ``sentences``) into ``bundle``; returns the decoder section.

    Words the model cannot spell with its tokens (digits, other scripts) count as ``<unk>``.
    """
    if (arpa is None) == (sentences is None):
        raise ConfigError("attach a language model from either an ARPA file or training sentences, not both")
    if sentences is not None and (isinstance(order, bool) or not isinstance(order, int)
                                  or not MIN_ORDER <= order <= MAX_ORDER):
        raise ConfigError(f"order must be between {MIN_ORDER} and {MAX_ORDER} (KenLM's limits), got {order!r}")
    manifest = load_manifest(bundle)
    DecoderSpec(f"{LM_DIR}/words.arpa", lm_weight, word_score, beam_size, beam_threshold)  # validate the settings
    with sigterm_as_interrupt():  # a kill cleans up like Ctrl-C: no .tmp-*.arpa left behind
        return _attach(manifest, arpa, sentences, order, min_count, prune, max_vocab, lm_weight, word_score,
                       beam_size, beam_threshold)


def _attach(manifest: Manifest, arpa: str | os.PathLike[str] | None, sentences: Iterable[str] | None, order: int,
            min_count: int, prune: tuple[int, ...], max_vocab: int | None, lm_weight: float, word_score: float,
            beam_size: int, beam_threshold: float) -> dict[str, Any]:
    root = manifest.root
    tmp: Path | None = None
    try:
        (root / LM_DIR).mkdir(exist_ok=True)
        if (root / LM_DIR).is_symlink() or not (root / LM_DIR).is_dir():
            raise BundleError(f"{root / LM_DIR}: not a directory inside the bundle")
        tmp = _temp(root / LM_DIR, ".arpa")
        stats: NgramStats | None = None
        if sentences is not None:
            words = _Spelled(sentences, frozenset(manifest.tokens.tokens) - {SEPARATOR})
            try:
                stats = build_arpa(words, tmp, order=order, min_count=min_count, prune=prune, max_vocab=max_vocab)
            except ConfigError as exc:  # name the text, not the function
                where = sentences.where if isinstance(sentences, TextFiles) else "the training sentences"
                message = str(exc)
                raise ConfigError(f"{where}: {message.removeprefix('build_arpa: ')}"
                                  if message.startswith("build_arpa: ") else message) from None
            source: dict[str, Any] = asdict(stats)
        else:
            _copy_arpa(Path(arpa), tmp)  # type: ignore[arg-type]  # not None here
            source = {"source": Path(arpa).name}  # type: ignore[arg-type]
        os.chmod(tmp, 0o644)
        digest = sha256_file(tmp)
        rel = f"{LM_DIR}/words-{digest[:16]}.arpa"
        spec = DecoderSpec(rel, lm_weight, word_score, beam_size, beam_threshold)
        _check_usable(tmp, manifest, Path(arpa).name if arpa is not None else "the built model")
        old = manifest.decoder.lm if manifest.decoder is not None else None
        files = {**{k: v for k, v in manifest.files.items() if k != old},
                 rel: {"sha256": digest, "bytes": tmp.stat().st_size}}
        new = dataclasses.replace(manifest, decoder=spec, lm_ngram=source, files=files)
        parse_manifest(new.to_dict(), root)  # the new manifest satisfies the contract
        os.replace(tmp, root / rel)  # a new name: the current manifest never lists it
        tmp = None
        write_manifest(new)  # the commit point
    except OSError as exc:
        _discard(tmp, root, manifest)
        raise BundleError(f"{root}: cannot write the language model ({exc.strerror or exc})") from None
    except BaseException:
        _discard(tmp, root, manifest)
        raise
    if old is not None and old != rel:
        (root / old).unlink(missing_ok=True)
    return dict(new.to_dict()["decoder"])


class _Spelled:
    """The sentences with every word the model cannot spell replaced by ``<unk>``; iterable more than
    once when the sentences are (build_arpa reads them twice instead of holding them in memory)."""

    def __init__(self, sentences: Iterable[str], spellable: frozenset[str]) -> None:
        self.sentences = sentences if iter(sentences) is not sentences else list(sentences)
        self.spellable = spellable

    def __iter__(self) -> Iterator[str]:
        for s in self.sentences:
            yield " ".join(w if set(w) <= self.spellable else UNK for w in s.split()) if isinstance(s, str) else s


def set_decoder_settings(bundle: str | os.PathLike[str], *, lm_weight: float | None = None,
                         word_score: float | None = None, beam_size: int | None = None) -> dict[str, Any]:
    """Change the default decoding settings of a bundle that has a language model (the model stays)."""
    manifest = load_manifest(bundle)
    if manifest.decoder is None:
        raise ConfigError(f"{manifest.root}: this bundle has no language model to set weights for")
    d = manifest.decoder
    spec = DecoderSpec(d.lm, d.lm_weight if lm_weight is None else lm_weight,
                       d.word_score if word_score is None else word_score,
                       d.beam_size if beam_size is None else beam_size, d.beam_threshold)
    new = dataclasses.replace(manifest, decoder=spec)
    try:
        write_manifest(new)
    except OSError as exc:
        raise BundleError(f"{manifest.root}: cannot write the manifest ({exc.strerror or exc})") from None
    return dict(new.to_dict()["decoder"])


def _temp(folder: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)  # O_EXCL: never a planted symlink
    os.close(fd)
    return Path(name)


def _discard(tmp: Path | None, root: Path, manifest: Manifest) -> None:
    """Undo an attach that did not commit: the temp file and any model file the manifest does not list."""
    if tmp is not None:
        tmp.unlink(missing_ok=True)
    try:
        listed = set(load_manifest(root).files)
    except BundleError:
        listed = set(manifest.files)
    folder = root / LM_DIR
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.glob("words-*.arpa"):
            if f"{LM_DIR}/{path.name}" not in listed:
                path.unlink(missing_ok=True)
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def _copy_arpa(src: Path, dst: Path) -> None:
    try:
        with open(src, "rb") as f:
            head = f.read(4096)
        if src.suffix == ".gz" or b"\\data\\" not in head:
            raise ConfigError(f"{src}: not a plain-text ARPA language model (no \\data\\ header)")
        validate_arpa(src)  # in Python: KenLM never sees a file that could crash it
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read the ARPA file ({exc.strerror or exc})") from None


def _check_usable(path: Path, manifest: Manifest, name: str) -> None:
    """Load the model as the runtime will (when flashlight-text is installed), in a child process:
    a crash of the native loader is a one-line error here, not the end of this process."""
    from ..runtime import check_language_model_file

    try:
        check_language_model_file(path, manifest.tokens)
    except BundleError as exc:
        raise ConfigError(str(exc).replace(str(path), name)) from None
