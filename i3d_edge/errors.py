"""The one exceptions module of i3d-edge.

Every error a user can cause is an :class:`I3dEdgeError`; each class also subclasses the
built-in exception a caller would naturally catch, so ``except ValueError`` keeps working.
Messages are one line and name the offending file and the cause.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioWarning",
    "BundleError",
    "CheckpointError",
    "ClusterError",
    "ConfigError",
    "CorpusError",
    "ExportError",
    "I3dEdgeError",
    "SourceModelError",
    "first_line",
    "native_reason",
]


class I3dEdgeError(Exception):
    """Base class of every i3d-edge error."""


class ConfigError(I3dEdgeError, ValueError):
    """An invalid model, feature or runtime setting."""


class CheckpointError(I3dEdgeError, ValueError):
    """A checkpoint that is missing, corrupt, unsafe or not an I3D checkpoint."""


class BundleError(I3dEdgeError, ValueError):
    """A bundle that is missing, tampered with, or does not match its manifest."""


class AudioError(I3dEdgeError, ValueError):
    """Audio that cannot be read or is unusable (empty, too short, NaN/Inf samples)."""


class CorpusError(I3dEdgeError, ValueError):
    """A corpus directory without a usable transcripts.tsv."""


class ExportError(I3dEdgeError, RuntimeError):
    """An export that failed, including a failed parity verification."""


class SourceModelError(I3dEdgeError, ValueError):
    """A model directory to import (Hugging Face format) that is unsupported, incomplete or broken."""


class ClusterError(I3dEdgeError, ConnectionError):
    """A Ray cluster that cannot be joined, or that lost a run (``transcribe --ray``)."""


class AudioWarning(UserWarning):
    """Audio that was read, but not all of it (truncated or damaged): what could be read is used."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), at most ``limit``
    characters: the cause part of every one-line error built from a library's exception."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def native_reason(exc: BaseException, limit: int = 200) -> str:
    """The cause line of a C++ library's exception (KenLM, flashlight), whose message starts with
    a source location (``/src/lm/read_arpa.hh:65 in void lm::...() threw FormatLoadException.``):
    the first line that neither starts with ``/`` nor says "threw", else the first line, else
    the type name; stripped, at most ``limit`` characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln for ln in lines if "threw" not in ln and not ln.startswith("/")]
    return (causes or lines or [type(exc).__name__])[0][:limit]
