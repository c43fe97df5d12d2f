"""Small helpers shared by the export modules."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

__all__ = ["MAX_OPSET", "MIN_OPSET", "quiet", "torch_threads"]

MIN_OPSET = 17  # LayerNormalization is a single op from opset 17 on
MAX_OPSET = 20  # the TorchScript exporter's newest opset


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the chatter of the exporter, onnxsim and onnxruntime.quantization: Python
    warnings, the ``torch.onnx`` logger and root-logger warnings (restoring the root logger's
    handlers, which a bare ``logging.warning`` call would otherwise install for good)."""
    root, onnx_logger = logging.getLogger(), logging.getLogger("torch.onnx")
    saved = (root.level, list(root.handlers), onnx_logger.level)
    root.setLevel(logging.ERROR)
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        onnx_logger.setLevel(saved[2])


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the setting afterwards.

    Export and verification run many small ops; with one thread torch is 5-15x faster on a
    busy 2-core machine than with two (OpenMP workers spin against other processes)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
