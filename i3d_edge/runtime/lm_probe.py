"""Probe-load a language model in a child process before this process loads it (no torch).

KenLM's ARPA loader is native code that trusts its input: a file it cannot handle may crash the
process (a segmentation fault Python cannot catch). A bundle is untrusted, so before the runtime
loads a bundle's LM it is checked in Python (:func:`i3d_edge.lm.validate_arpa`) and loaded once,
exactly as the runtime will, in a child process with bounded memory and time. The verdict is
cached by the model's SHA-256 (and the token table, this package's and flashlight-text's
versions): in this process for both outcomes, on disk (``$I3D_EDGE_CACHE_DIR`` or
``$XDG_CACHE_HOME/i3d-edge``, under ``lm-verdicts/``) for models that loaded, so the probe costs
one child process per model, not per run. A model that fails is a one-line BundleError naming
the file; greedy decoding is unaffected.

Run as ``python -m i3d_edge.runtime.lm_probe ARPA`` with the token list as JSON on stdin: exit 0
when the model loads, 1 with one line on stderr when it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path

from ..errors import BundleError, ConfigError, I3dEdgeError
from ..manifest import Manifest, sha256_file
from ..tokens import TokenTable
from .decoding import LanguageModel

__all__ = ["LmSlot", "check_language_model", "probe_language_model"]

_VERDICTS: dict[str, str | None] = {}  # key -> None (loads) or the one-line reason it does not
_LOCK = threading.Lock()  # one probe at a time; later callers reuse its verdict
_MEMORY_BYTES = 4 << 30  # address space of the child, plus 64 x the model's size
_SECONDS = 120  # time of the child, plus 10 s per MB of model


def probe_language_model(manifest: Manifest, rel: str) -> Path:
    """Verify bundle file ``rel`` (its SHA-256), make sure it loads as the bundle's LM without harming
    this process, and return its path; raise a one-line BundleError when it does not load."""
    path = manifest.verify(rel)
    _check(path, manifest.files[rel]["sha256"], manifest.tokens)
    return path


def check_language_model(path: Path, tokens: TokenTable) -> None:
    """Raise a one-line BundleError unless the ARPA file at ``path`` loads as an LM over ``tokens``."""
    _check(path, sha256_file(path), tokens)


def _check(path: Path, sha256: str, tokens: TokenTable) -> None:
    key = _key(sha256, tokens)
    with _LOCK:
        if key not in _VERDICTS:
            _VERDICTS[key] = None if _cached_ok(key) else _probe(path, tokens, key)
        verdict = _VERDICTS[key]
    if verdict is not None:
        raise BundleError(verdict if verdict.startswith(str(path)) else f"{path}: {verdict}")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # not installed (or run from a checkout)
        return "none"


def _key(sha256: str, tokens: TokenTable) -> str:
    extra = json.dumps([list(tokens.tokens), _version("i3d-edge"), _version("flashlight-text")]).encode()
    return f"{sha256[:32]}-{hashlib.sha256(extra).hexdigest()[:16]}"


def _cache_dir() -> Path:
    root = os.environ.get("I3D_EDGE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "i3d-edge")
    return Path(root) / "lm-verdicts"


def _cached_ok(key: str) -> bool:
    try:
        return (_cache_dir() / key).read_text(encoding="utf-8") == "ok\n"
    except (OSError, ValueError):
        return False


def _remember_ok(key: str) -> None:
    """Record a model that loaded (atomically; a cache that cannot be written is skipped)."""
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("ok\n")
            os.replace(tmp, folder / key)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def _probe(path: Path, tokens: TokenTable, key: str) -> str | None:
    """Load the model in a child process; None when it loads, else the one-line reason."""
    size = path.stat().st_size
    memory = _MEMORY_BYTES + 64 * size
    seconds = _SECONDS + 10 * size // 1_000_000
    package = str(Path(__file__).resolve().parents[2])  # the child imports this very copy of i3d_edge
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)}

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]  # a limit of ours may only lower the caller's
    memory = memory if hard == resource.RLIM_INFINITY else min(memory, hard)

    def limit() -> None:  # in the child, before it runs Python
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file behind

    try:
        proc = subprocess.run([sys.executable, "-m", "i3d_edge.runtime.lm_probe", str(path)],
                              input=json.dumps(list(tokens.tokens)), capture_output=True, text=True,
                              timeout=seconds, env=env, preexec_fn=limit, check=False)
    except subprocess.TimeoutExpired:
        return f"not a usable ARPA language model (loading it took more than {seconds} s)"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot check the language model in a child process ({str(exc)[:100]})"
    if proc.returncode == 0:
        _remember_ok(key)
        return None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"not a usable ARPA language model (the KenLM loader crashed with {name}; decode greedily)"
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else f"not a usable ARPA language model (loader exit status {proc.returncode})"


class LmSlot:
    """Loads a bundle's LanguageModel on first use (under a lock); shared by Runtime clones."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._lock = threading.Lock()
        self._lm: LanguageModel | None = None

    @property
    def loaded(self) -> bool:
        return self._lm is not None

    def get(self) -> LanguageModel:
        with self._lock:
            if self._lm is None:
                spec = self.manifest.decoder
                if spec is None:
                    raise ConfigError(f"{self.manifest.root}: this bundle has no language model "
                                      "(attach one with `i3d-edge lm`, or use decoder='greedy')")
                self._lm = LanguageModel(probe_language_model(self.manifest, spec.lm), self.manifest.tokens)
            return self._lm



def _main() -> int:
    path = Path(sys.argv[1])
    try:
        from ..lm import validate_arpa

        tokens = TokenTable.from_list(json.loads(sys.stdin.read()))
        validate_arpa(path)
        LanguageModel(path, tokens)
    except I3dEdgeError as exc:
        print(str(exc).strip().replace("\n", " "), file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{path}: not a usable ARPA language model (loading it needs more than "
              f"{_MEMORY_BYTES >> 30} GiB + 64 x its size)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
