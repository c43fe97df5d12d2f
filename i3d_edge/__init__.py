"""i3d-edge: input-dependent dynamic-depth (I3D) speech recognition on small CPUs with ONNX Runtime.

``from i3d_edge import Runtime`` loads the runtime (numpy + onnxruntime only); torch is
imported only by ``i3d_edge.models`` and ``i3d_edge.export``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AudioError, BundleError, CheckpointError, ExportError, I3dEdgeError

__version__ = "0.1.0"

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


def __getattr__(name: str) -> Any:
    # Lazy: importing the package stays cheap (no onnxruntime until a Runtime is wanted).
    if name in ("Runtime", "Transcript"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'i3d_edge' has no attribute {name!r}")
