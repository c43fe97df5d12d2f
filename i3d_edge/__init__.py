"""i3d-edge: input-dependent dynamic-depth (I3D) speech recognition on small CPUs with ONNX Runtime.

``from i3d_edge import Runtime`` loads the runtime (numpy + onnxruntime only); torch is
imported only by ``i3d_edge.models`` and ``i3d_edge.export``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AudioError, BundleError, CheckpointError, ExportError, I3dEdgeError

__all__ = [
    "AudioError",
    "BundleError",
    "CheckpointError",
    "ExportError",
    "I3dEdgeError",
    "Runtime",
    "Transcript",
    "__version__",
]

if TYPE_CHECKING:
    from .runtime import Runtime, Transcript

    __version__: str


def __getattr__(name: str) -> Any:
    # Lazy: importing the package stays cheap (no onnxruntime until a Runtime is wanted, no
    # importlib.metadata until the version is).
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("i3d-edge")  # pyproject.toml's, the one place the version is written
        except metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
            return "0+unknown"
    if name in ("Runtime", "Transcript"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'i3d_edge' has no attribute {name!r}")
