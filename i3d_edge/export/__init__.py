"""Export an I3D checkpoint as a bundle of separate ONNX graphs (frontend, gate predictor(s),
one graph per encoder module, head) plus ``manifest.json``, verified against torch.

``export_bundle`` needs torch (the ``[export]`` extra); ``inspect_bundle`` lives in the torch-free
bundle room (:mod:`i3d_edge.bundle.inspection`) and is imported lazily, so
``from i3d_edge.export import inspect_bundle`` never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["export_bundle", "inspect_bundle"]

if TYPE_CHECKING:
    from ..bundle.inspection import inspect_bundle
    from .bundle import export_bundle


def __getattr__(name: str) -> Any:
    if name == "export_bundle":
        from .bundle import export_bundle

        return export_bundle
    if name == "inspect_bundle":
        from ..bundle.inspection import inspect_bundle

        return inspect_bundle
    raise AttributeError(f"module 'i3d_edge.export' has no attribute {name!r}")
