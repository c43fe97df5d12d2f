"""Probe-load a language model in a child process before this process loads it (no torch).

KenLM's ARPA loader is native code that trusts its input: a file it cannot handle may crash the
process (a segmentation fault Python cannot catch). A bundle is untrusted, so before the runtime
loads a bundle's LM it is checked in Python (:func:`i3d_edge.lm.validate_arpa`) and loaded once,
exactly as the runtime will, in a child process with bounded memory and time.

The bytes that are hashed, probed and loaded are the same: the bundle's file is copied once, while
its SHA-256 is computed, into a private temporary folder (0700, this user's), checked against the
manifest, and both the child and this process load that copy, which nobody else can change. A
file swapped in the bundle after the copy is never read (a swap during the copy fails the hash).

The verdict is cached by the copy's SHA-256 (and the token table, this package's and
flashlight-text's versions): in this process for both outcomes, on disk (``$I3D_EDGE_CACHE_DIR`` or
``$XDG_CACHE_HOME/i3d-edge``, under ``lm-verdicts/``) for models that loaded, so the probe costs
one child process per model, not per run. The disk cache is trusted only when it is private:
``lm-verdicts/`` is created 0700, must be a directory (not a symlink) owned by this user that no
one else may write, and an entry counts only when it is a regular file owned by this user holding
exactly ``ok``; anything else (a FIFO, a symlink to ``/dev/zero``, a planted file) is ignored and
the model is probed. A model that fails is a one-line BundleError naming the file; greedy decoding
is unaffected.

Run as ``python -m i3d_edge.runtime.lm_probe ARPA`` with the token list as JSON on stdin: exit 0
when the model loads, 1 with one line on stderr when it is refused.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from ..errors import BundleError, ConfigError, I3dEdgeError
from ..manifest import Manifest
from ..tokens import TokenTable
from .decoding import LanguageModel

__all__ = ["LmSlot", "check_language_model", "load_language_model", "probe_language_model"]

_VERDICTS: dict[str, str | None] = {}  # key -> None (loads) or the one-line reason it does not
_LOCK = threading.Lock()  # one probe at a time; later callers reuse its verdict
_MEMORY_BYTES = 4 << 30  # address space of the child, plus 64 x the model's size
_SECONDS = 120  # time of the child, plus 10 s per MB of model
_OK = b"ok\n"  # the content of a cache entry for a model that loaded
_CHUNK = 1 << 20
_FILE = "\x00file\x00"  # stands for the model's path in a remembered reason
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def probe_language_model(manifest: Manifest, rel: str) -> Path:
    """Make sure bundle file ``rel`` (its SHA-256 checked) loads as the bundle's LM without harming this
    process, and return its path; raise a one-line BundleError when it does not load."""
    with _verified_copy(manifest, rel) as (copy, digest):
        _check(copy, digest, manifest.tokens, manifest.resolve(rel))
    return manifest.resolve(rel)


def load_language_model(manifest: Manifest, rel: str) -> LanguageModel:
    """Probe bundle file ``rel`` (as :func:`probe_language_model`) and load it in this process: both from
    one private copy of the bytes whose SHA-256 matched the manifest."""
    shown = manifest.resolve(rel)
    with _verified_copy(manifest, rel) as (copy, digest):
        _check(copy, digest, manifest.tokens, shown)
        try:
            return LanguageModel(copy, manifest.tokens)
        except BundleError as exc:
            raise BundleError(str(exc).replace(str(copy), str(shown))) from None


def check_language_model(path: Path, tokens: TokenTable) -> None:
    """Raise a one-line BundleError unless the ARPA file at ``path`` loads as an LM over ``tokens``."""
    with _private_copy(Path(path), None) as (copy, digest):
        _check(copy, digest, tokens, Path(path))


def _check(copy: Path, sha256: str, tokens: TokenTable, shown: Path) -> None:
    """Probe the private ``copy`` (SHA-256 ``sha256``) unless its verdict is known; messages name ``shown``."""
    key = _key(sha256, tokens)
    with _LOCK:
        if key not in _VERDICTS:
            reason = None if _cached_ok(key) else _probe(copy, tokens, key)
            _VERDICTS[key] = None if reason is None else reason.replace(str(copy), _FILE)  # copies differ per call
        verdict = _VERDICTS[key]
    if verdict is not None:
        verdict = verdict.replace(_FILE, str(shown))
        raise BundleError(verdict if verdict.startswith(str(shown)) else f"{shown}: {verdict}")


@contextlib.contextmanager
def _verified_copy(manifest: Manifest, rel: str) -> Iterator[tuple[Path, str]]:
    """A private copy of bundle file ``rel`` whose SHA-256 matches the manifest, and that SHA-256."""
    path = manifest.resolve(rel)  # confined to the bundle, no symlink on the way
    entry = manifest.files.get(rel)
    if entry is None:
        raise BundleError(f"{manifest.root}: {rel} is not listed in the manifest")
    with _private_copy(path, entry["sha256"]) as result:
        yield result


@contextlib.contextmanager
def _private_copy(path: Path, expected: str | None) -> Iterator[tuple[Path, str]]:
    """Copy the regular file ``path`` into a new 0700 folder of this user, hashing what is copied;
    yield (the copy, its SHA-256) and remove both after. A hash other than ``expected`` is a BundleError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing bundle file") from None
    except OSError as exc:
        why = "symlinks are not allowed in a bundle" if exc.errno == errno.ELOOP else \
            f"cannot read the bundle file ({exc.strerror or exc})"
        raise BundleError(f"{path}: {why}") from None
    folder = None
    try:
        with os.fdopen(fd, "rb") as src:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                raise BundleError(f"{path}: not a regular file")
            folder = Path(tempfile.mkdtemp(prefix="i3d-edge-lm-"))  # 0700: only this user can change the copy
            copy = folder / path.name
            digest = hashlib.sha256()
            with open(copy, "xb") as dst:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    dst.write(block)
        if expected is not None and digest.hexdigest() != expected:
            raise BundleError(f"{path}: SHA-256 mismatch (file modified or corrupt)")
    except OSError as exc:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise BundleError(f"{path}: cannot copy the language model to a private folder "
                          f"({exc.strerror or exc})") from None
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        yield copy, digest.hexdigest()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


def _open_private_dir(create: bool) -> int | None:
    """A descriptor of ``lm-verdicts/`` when it is a real directory of this user that no one else may
    write (created 0700 when ``create``); None otherwise (then no verdict is read or written)."""
    folder = _cache_dir()
    try:
        if create:
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)  # a symlink: ELOOP
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _cached_ok(key: str) -> bool:
    """Whether a private cache entry says the model with this key loaded (see the module's note)."""
    folder = _open_private_dir(create=False)
    if folder is None:
        return False
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=folder)  # a FIFO does not block
    except OSError:
        return False
    finally:
        os.close(folder)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size != len(_OK):
            return False
        return os.read(fd, len(_OK) + 1) == _OK
    except OSError:
        return False
    finally:
        os.close(fd)


def _remember_ok(key: str) -> None:
    """Record a model that loaded (atomically, in the private folder; a cache that cannot be written or
    is not private is skipped)."""
    folder = _open_private_dir(create=True)
    if folder is None:
        return
    tmp = f".tmp-{secrets.token_hex(8)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=folder)
        try:
            os.write(fd, _OK)
        finally:
            os.close(fd)
        os.replace(tmp, key, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
    finally:
        os.close(folder)


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
                self._lm = load_language_model(self.manifest, spec.lm)
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
