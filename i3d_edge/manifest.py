"""The bundle contract shared by export (writer) and runtime (reader); numpy/stdlib only.

A bundle is a directory::

    manifest.json
    fp32/frontend.onnx  fp32/gate.onnx  fp32/layer00.mha.onnx ... fp32/head.onnx  [fp32/monolithic.onnx]
    int8/...            (optional, same names, dynamic int8 weights)

Graph interfaces (ONNX input -> output names; B batch, T feature frames, T' encoder frames):

=============  ====================================  =================================
role           inputs                                outputs
=============  ====================================  =================================
frontend       features (B,T,F) f32, features_lens   x (B,T',D) f32, x_lens (B,) i64
               (B,) i64
gate (global)  x, x_lens                             gate_probs (B, G)  G = N x kinds per layer
gate (local)   x, x_lens          (one per layer)    gate_probs (B, K)  [the layer's kinds, in order]
module kind    x, x_lens when the kind needs them    y = x + scale * f(LN(x))
head           encoder_out (B,T',D)                  log_probs (B,T',V)
monolithic     features, features_lens               log_probs, log_probs_lens
=============  ====================================  =================================

The module kinds (``mha``, ``ffn``, ``conv``, ``ffn_pre``, ``ffn_post``: which take ``x_lens``,
their residual scale) and each architecture's layer are the table of :mod:`i3d_edge.module_kinds`.

Manifest fields (``version`` 1)::

    {"format": "i3d-edge-bundle", "version": 1,
     "model_config": {...}, "feature_config": {...}, "tokens": [...],
     "gates": {"predictor": "global|local|none", "threshold": 0.5, "modules": ["layer00.mha", ...]},
     "default_variant": "fp32",
     "variants": {"fp32": {"quantization": null, "graphs": {ROLE_KEY: RELPATH}}, "int8": {...}},
     "files": {RELPATH: {"sha256": HEX, "bytes": N}}, "tokens_sha256": HEX,
     "decoder": {"kind": "lexicon-kenlm", "lm": "lm/words-SHA.arpa", "lm_weight": 1.0,   (optional)
                 "word_score": 0.0, "beam_size": 32, "beam_threshold": 8.0, "ngram": {...}},
     "provenance": {...}, "verification": {...}}

Tokens are printable text (checked on reading) and hashed: ``tokens_sha256`` is the SHA-256 of the
token list's compact ASCII JSON, written by export and checked when present.
The typed :class:`Manifest` is the schema both ways: :func:`parse_manifest` reads it,
:meth:`Manifest.to_dict` and :func:`write_manifest` write it (export, LM attachment and bundle
completion build or ``dataclasses.replace`` a Manifest; nothing edits the JSON by hand).

The optional ``decoder`` section attaches a word n-gram language model (ARPA) for CTC beam
search over the words of its vocabulary; readers without it decode greedily.

ROLE_KEY is ``frontend``, ``gate``, ``head``, ``monolithic``, a module name (``layer03.ffn``)
or a local gate (``layer03.gate``). Every path is relative, inside the bundle, and hashed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .config import FeatureConfig, ModelConfig, check_beam_size, check_lm_weight, check_threshold, check_word_score
from .errors import BundleError, ConfigError, I3dEdgeError, first_line
from .limits import LIMITS, min_weights
from .module_kinds import MODULE_KINDS, module_io
from .tokens import TokenTable

__all__ = [
    "BUNDLE_FORMAT", "BUNDLE_VERSION", "DECODER_KIND", "DEFAULT_BEAM_THRESHOLD",
    "GRAPH_IO", "MANIFEST_NAME", "TOKENS_HASH_FIELD", "DecoderSpec", "Manifest",
    "Variant", "check_token_text", "file_entry", "json_safe", "load_manifest", "local_gate_key", "sha256_file",
    "tokens_sha256", "write_manifest",
]

def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, recursively: json.dumps would
    write them as the invalid tokens NaN / Infinity. For everything the project writes as JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# Beam pruning of LM decoding: hypotheses more than this (natural-log score) below the best are
# dropped. On the default model's 10-minute benchmark file 8 makes the search 2.1x cheaper than the
# earlier 25 (decoder CPU time) for +0.09 WER point on dev and none on dev_fsdd; tighter costs more
# than 1 WER point (benchmarks/LM_DECODING.md).
DEFAULT_BEAM_THRESHOLD = 8.0

BUNDLE_FORMAT = "i3d-edge-bundle"
BUNDLE_VERSION = 1
MANIFEST_NAME = "manifest.json"
DECODER_KIND = "lexicon-kenlm"  # word n-gram LM (ARPA) + lexicon from its vocabulary, CTC beam search

# role -> (input names, output names): the ONNX interface every exported graph has.
GRAPH_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "frontend": (("features", "features_lens"), ("x", "x_lens")),
    "gate": (("x", "x_lens"), ("gate_probs",)),
    **{kind: module_io(kind) for kind in MODULE_KINDS},
    "head": (("encoder_out",), ("log_probs",)),
    "monolithic": (("features", "features_lens"), ("log_probs", "log_probs_lens")),
}


def local_gate_key(layer: int) -> str:
    """Graph key of layer ``layer``'s local gate predictor."""
    return f"layer{layer:02d}.gate"


def role_of(key: str) -> str:
    """Role (a GRAPH_IO key) of a graph key: ``layer03.ffn`` -> ``ffn``."""
    return key.rsplit(".", 1)[-1] if key.startswith("layer") else key


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``files`` entry of a bundle file: its SHA-256 and size."""
    return {"sha256": sha256_file(path), "bytes": os.stat(path).st_size}


@dataclass(frozen=True)
class Variant:
    """One precision of the graphs (fp32, int8)."""

    name: str
    quantization: dict[str, Any] | None  # None for fp32; e.g. {"method": "dynamic", "weight_type": "int8"}
    graphs: dict[str, str]  # ROLE_KEY -> relative path


@dataclass(frozen=True)
class DecoderSpec:
    """The bundle's language-model decoder settings (``decoder`` section), validated."""

    lm: str  # RELPATH of the ARPA word n-gram model (listed in ``files``)
    lm_weight: float  # weight of the LM's log10 probability against the acoustic natural-log score
    word_score: float  # bonus per emitted word (counters the LM's preference for few words)
    beam_size: int  # hypotheses kept per frame
    beam_threshold: float  # drop hypotheses scoring this much below the best

    def __post_init__(self) -> None:
        object.__setattr__(self, "lm_weight", check_lm_weight(self.lm_weight, "decoder lm_weight"))
        object.__setattr__(self, "word_score", check_word_score(self.word_score, "decoder word_score"))
        check_beam_size(self.beam_size, "decoder beam_size")
        value = self.beam_threshold
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1e3:
            raise ConfigError(f"decoder beam_threshold must be a number in (0, 1000], got {value!r}")
        object.__setattr__(self, "beam_threshold", float(value))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecoderSpec:
        if data.get("kind") != DECODER_KIND:
            raise ConfigError(f"unknown decoder kind {data.get('kind')!r} (this build reads {DECODER_KIND!r})")
        lm = data.get("lm")
        if not isinstance(lm, str):
            raise ConfigError("decoder has no 'lm' path")
        return cls(lm, data.get("lm_weight", 1.0), data.get("word_score", 0.0), data.get("beam_size", 32),
                   data.get("beam_threshold", DEFAULT_BEAM_THRESHOLD))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": DECODER_KIND, "lm": self.lm, "lm_weight": self.lm_weight, "word_score": self.word_score,
                "beam_size": self.beam_size, "beam_threshold": self.beam_threshold}


@dataclass(frozen=True)
class Manifest:
    root: Path  # bundle directory (resolved)
    model_config: ModelConfig
    feature_config: FeatureConfig
    tokens: TokenTable
    predictor: str  # global | local | none
    threshold: float  # default gate threshold
    modules: tuple[str, ...]  # execution order
    default_variant: str
    variants: dict[str, Variant]
    files: dict[str, dict[str, Any]]  # RELPATH -> {"sha256", "bytes"}
    decoder: DecoderSpec | None = None  # language-model decoding, when the bundle has an LM
    provenance: dict[str, Any] = field(default_factory=dict)  # export versions, date, source checkpoint
    verification: dict[str, Any] = field(default_factory=dict)  # the export's parity report
    lm_ngram: dict[str, Any] = field(default_factory=dict)  # the LM's n-gram counts and sources

    def resolve(self, rel: str) -> Path:
        """Absolute path of a bundle file, refusing anything that escapes the bundle."""
        return _confined(self.root, rel)

    def verify(self, rel: str) -> Path:
        """Check that ``rel`` exists and matches its SHA-256; return its path."""
        path = self.resolve(rel)
        entry = self.files.get(rel)
        if entry is None:
            raise BundleError(f"{self.root}: {rel} is not listed in {MANIFEST_NAME}")
        _regular_size(path)
        try:
            digest = sha256_file(path)
        except OSError as exc:  # e.g. no read permission
            raise BundleError(f"{path}: cannot read the bundle file ({exc.strerror or exc})") from None
        if digest != entry["sha256"]:
            raise BundleError(f"{path}: SHA-256 mismatch (file modified or corrupt)")
        return path

    def variant(self, name: str | None = None) -> Variant:
        name = name or self.default_variant
        if name not in self.variants:
            raise BundleError(f"{self.root}: no {name!r} graphs in this bundle "
                              f"(has: {', '.join(sorted(self.variants))})")
        return self.variants[name]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON data: what :func:`parse_manifest` reads back to an equal Manifest."""
        data: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "model_config": self.model_config.to_dict(),
            "feature_config": self.feature_config.to_dict(),
            "tokens": list(self.tokens.tokens),
            TOKENS_HASH_FIELD: tokens_sha256(self.tokens),
            "gates": gates_section(self.predictor, self.threshold, self.modules),
            "default_variant": self.default_variant,
            "variants": {name: {"quantization": v.quantization, "graphs": dict(v.graphs)}
                         for name, v in self.variants.items()},
            "files": {rel: dict(entry) for rel, entry in self.files.items()},
            "provenance": self.provenance,
            "verification": self.verification,
        }
        if self.decoder is not None:
            data["decoder"] = {**self.decoder.to_dict(), "ngram": self.lm_ngram}
        return data

TOKENS_HASH_FIELD = "tokens_sha256"  # SHA-256 of the token list (written by export, checked when present)
MAX_TOKEN_CHARS = 64  # characters of one token (the default model's are one; word pieces are short)


def tokens_sha256(tokens: TokenTable) -> str:
    """SHA-256 of a token list as the manifest hashes it: its JSON text, ASCII-escaped, no spaces."""
    return hashlib.sha256(json.dumps(list(tokens.tokens), ensure_ascii=True, separators=(",", ":")).encode()
                          ).hexdigest()


def check_token_text(tokens: TokenTable) -> None:
    """Raise ConfigError unless every token is printable text of at most MAX_TOKEN_CHARS characters:
    a token is printed as it is (a newline would split a result line, ``ESC`` drive the terminal)."""
    for i, token in enumerate(tokens.tokens):
        if not token.isprintable() or len(token) > MAX_TOKEN_CHARS:
            shown = token[:20].encode("unicode_escape").decode("ascii")
            raise ConfigError(f"token {i} ('{shown}') is not printable text of at most {MAX_TOKEN_CHARS} "
                              "characters")


def gates_section(predictor: str, threshold: float, modules: tuple[str, ...]) -> dict[str, Any]:
    """The manifest's ``gates`` section (also in the self-describing graphs' metadata)."""
    return {"predictor": predictor, "threshold": threshold, "modules": list(modules)}


def write_manifest(manifest: Manifest) -> Path:
    """Write ``manifest`` as ``manifest.root/manifest.json`` once it passes :func:`parse_manifest`: the
    one writer of the format (export, LM attachment, bundle completion). Atomic: a new file in the
    root (its name never a planted symlink; readable as the umask allows), then renamed over the
    manifest, so a reader sees the old manifest or the new one, never a part."""
    data = manifest.to_dict()
    parse_manifest(data, manifest.root.resolve())  # resolved, as the readers see it
    return _write_json(manifest.root, data)


def _write_json(root: Path, data: Mapping[str, Any]) -> Path:
    """``data`` as ``root/manifest.json``, written atomically (see :func:`write_manifest`)."""
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=root)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(json_safe(dict(data)), indent=2, ensure_ascii=False) + "\n")
        umask = os.umask(0o022)  # read it: mkstemp made the file 0600; a manifest is readable as the umask allows
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, root / MANIFEST_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return root / MANIFEST_NAME


def _regular_size(path: Path) -> int:
    """The size of the regular file at ``path`` (no FIFO, device or directory: those could hang a reader)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing bundle file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot access the bundle file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{path}: not a regular file")
    return st.st_size


def _confined(root: Path, rel: str) -> Path:
    # an escape is named as such whatever its length (the checks are linear in the string)
    if not rel or "\\" in rel or rel.startswith("/") or ".." in rel.split("/") or Path(rel).is_absolute():
        raise BundleError(f"{root}: manifest path {rel[:80]!r} escapes the bundle")
    if len(rel) > LIMITS.path_chars or rel.count("/") >= LIMITS.path_parts:
        raise BundleError(f"{root}: manifest path {rel[:80]!r}... is longer than {LIMITS.path_chars} characters "
                          f"or {LIMITS.path_parts} components")
    pure = PurePosixPath(rel)
    if "\0" in rel:
        raise BundleError(f"{root}: manifest path {rel!r} is not a valid file name")
    path = root / pure
    try:
        # no symlinks anywhere between the root and the file
        probe = root
        for part in pure.parts:
            probe = probe / part
            if probe.is_symlink():
                raise BundleError(f"{probe}: symlinks are not allowed in a bundle")
        inside = path.resolve().is_relative_to(root)
    except OSError as exc:  # e.g. a name too long for the filesystem
        raise BundleError(f"{root}: manifest path {rel[:80]!r} is not usable ({exc.strerror or exc})") from None
    if not inside:
        raise BundleError(f"{root}: manifest path {rel!r} escapes the bundle")
    return path


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise BundleError(f"{where}: manifest has no {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: manifest field {key!r} has the wrong type")
    return value


def parse_manifest(data: Any, root: Path) -> Manifest:
    """Validate a manifest dict (no file access besides path checks)."""
    where = str(root / MANIFEST_NAME)
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: not an i3d-edge bundle manifest")
    if data.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{where}: unsupported bundle version {data.get('version')!r} "
                          f"(this build reads {BUNDLE_VERSION}); re-export or upgrade i3d-edge")
    try:
        model_config = ModelConfig.from_dict(_need(data, "model_config", dict, where))
        feature_config = FeatureConfig.from_dict(_need(data, "feature_config", dict, where))
        LIMITS.check_frontend(model_config, feature_config)  # before anything sized by the configs is built
        tokens = TokenTable.from_list(_need(data, "tokens", list, where))
        check_token_text(tokens)
    except BundleError:
        raise
    except I3dEdgeError as exc:
        raise BundleError(f"{where}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. a feature mean float() rejects
        raise BundleError(f"{where}: invalid model or feature config ({first_line(exc)})") from None
    if len(tokens) != model_config.vocab_size:
        raise BundleError(f"{where}: {len(tokens)} tokens but vocab_size {model_config.vocab_size}")
    declared = data.get(TOKENS_HASH_FIELD)
    if declared is not None and declared != tokens_sha256(tokens):
        raise BundleError(f"{where}: {TOKENS_HASH_FIELD} does not match the tokens (manifest modified or corrupt)")
    if feature_config.n_mels != model_config.n_mels:
        raise BundleError(f"{where}: feature n_mels {feature_config.n_mels} does not match the model's "
                          f"{model_config.n_mels}")
    gates = _need(data, "gates", dict, where)
    predictor = _need(gates, "predictor", str, where)
    threshold = _need(gates, "threshold", (int, float), where)
    modules = tuple(_need(gates, "modules", list, where))
    if predictor != model_config.gates or modules != model_config.module_names:
        raise BundleError(f"{where}: gate layout does not match the model config")
    try:
        threshold = check_threshold(threshold, "gates threshold")
    except ConfigError as exc:
        raise BundleError(f"{where}: {exc}") from None
    files = _need(data, "files", dict, where)
    if len(files) > LIMITS.files:
        raise BundleError(f"{where}: lists {len(files)} files, more than the {LIMITS.files} a bundle may have")
    for name in ("provenance", "verification"):
        if not isinstance(data.get(name, {}), dict):
            raise BundleError(f"{where}: manifest field {name!r} has the wrong type")
    for rel, entry in files.items():
        _confined(root, rel)
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or len(entry["sha256"]) != 64):
            raise BundleError(f"{where}: file entry {rel!r} has no valid sha256")
    required = ["frontend", "head", *modules]
    if predictor == "global":
        required.append("gate")
    elif predictor == "local":
        required += [local_gate_key(i) for i in range(model_config.n_layers)]
    variants: dict[str, Variant] = {}
    declared = _need(data, "variants", dict, where)
    if len(declared) > LIMITS.variants:
        raise BundleError(f"{where}: {len(declared)} graph variants, more than {LIMITS.variants}")
    for name, spec in declared.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("graphs"), dict):
            raise BundleError(f"{where}: variant {name!r} has no graphs")
        if not isinstance(spec.get("quantization"), (dict, type(None))):
            raise BundleError(f"{where}: variant {name!r} has a quantization entry of the wrong type")
        graphs = spec["graphs"]
        missing = [k for k in required if k not in graphs]
        if missing:
            raise BundleError(f"{where}: variant {name!r} lacks graph(s) {', '.join(missing[:4])}")
        unknown = [k for k in graphs if k not in required and k != "monolithic"]
        if unknown:  # a reader would not know the graph's interface (GRAPH_IO)
            raise BundleError(f"{where}: variant {name!r} has unknown graph(s) {', '.join(unknown[:4])}")
        for key, rel in graphs.items():
            if not isinstance(rel, str) or rel not in files:
                raise BundleError(f"{where}: graph {name}/{key} points to an unlisted file {rel!r}")
        variants[name] = Variant(name, spec.get("quantization"), dict(graphs))
    if not variants:
        raise BundleError(f"{where}: no graph variants")
    default_variant = data.get("default_variant", "fp32")
    if not isinstance(default_variant, str) or default_variant not in variants:
        raise BundleError(f"{where}: default variant {default_variant!r} is missing")
    decoder = None
    if data.get("decoder") is not None:
        try:
            decoder = DecoderSpec.from_dict(_need(data, "decoder", dict, where))
        except ConfigError as exc:
            raise BundleError(f"{where}: {exc}") from None
        if decoder.lm not in files:
            raise BundleError(f"{where}: decoder lm points to an unlisted file {decoder.lm!r}")
    ngram = data["decoder"].get("ngram") if decoder is not None else None
    return Manifest(root, model_config, feature_config, tokens, predictor, threshold,
                    modules, default_variant, variants, files, decoder,
                    provenance=dict(data.get("provenance") or {}), verification=dict(data.get("verification") or {}),
                    lm_ngram=dict(ngram) if isinstance(ngram, dict) else {})


def load_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    """Read and validate ``bundle/manifest.json``; any problem is a one-line BundleError."""
    root = Path(bundle)
    try:
        mode = os.stat(root).st_mode  # follows a link to the bundle (an ordinary install)
        root = root.resolve()
    except FileNotFoundError:
        raise BundleError(f"{root}: no such bundle directory") from None
    except OSError as exc:  # e.g. a name too long, a loop of symlinks, no permission
        raise BundleError(f"{root}: cannot access the bundle directory ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(mode):
        raise BundleError(f"{root}: not a directory (expected an i3d-edge bundle)")
    path = root / MANIFEST_NAME
    try:
        raw = _read_manifest(path)  # its own one-line BundleErrors: missing, a symlink, not a regular file, too large
    except OSError as exc:  # e.g. a bundle directory the user may not search
        raise BundleError(f"{path}: unreadable manifest ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, an integer of > 4300 digits
        raise BundleError(f"{path}: unreadable manifest ({first_line(exc)})") from None
    except RecursionError:
        raise BundleError(f"{path}: unreadable manifest (nested too deeply)") from None
    manifest = parse_manifest(data, root)
    _check_sizes(manifest)
    return manifest


def _read_manifest(path: Path) -> bytes:
    """The bytes of a regular manifest file of at most LIMITS.manifest_bytes (a FIFO is refused, not read)."""
    # O_NOFOLLOW: a symlinked manifest fails to open (ELOOP), with no window between a check and the open
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (not an i3d-edge bundle)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BundleError(f"{path}: symlinks are not allowed in a bundle") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"{path}: not a regular file")
        raw = fh.read(LIMITS.manifest_bytes + 1)
    if len(raw) > LIMITS.manifest_bytes:
        raise BundleError(f"{path}: larger than the {LIMITS.manifest_bytes >> 20} MiB a bundle manifest may have")
    return raw


def _check_sizes(manifest: Manifest) -> None:
    """Every file the bundle uses is a regular file, and each variant's graphs hold at least one
    byte per weight the model config implies (int8 stores one, fp32 four)."""
    need = min_weights(manifest.model_config)
    for variant in manifest.variants.values():
        held = sum(_regular_size(manifest.resolve(rel)) for rel in variant.graphs.values())
        if held < need:
            raise BundleError(f"{manifest.root / MANIFEST_NAME}: the model config implies at least {need} weights "
                              f"but the {variant.name} graphs hold only {held} bytes")
    if manifest.decoder is not None:
        _regular_size(manifest.resolve(manifest.decoder.lm))
