"""Dynamic int8 weights, graph by graph, with ``onnxruntime.quantization.quantize_dynamic``.

Choices, measured on this project's 2-core AVX2 x86 CPU (no VNNI), 12-layer d_model 192/256
models, 24 module graphs + head chained at 10-30 s of audio (onnxruntime 1.32):

* ``QInt8`` weights with ``reduce_range`` (7-bit): 1.2-1.5x faster than fp32, 3.8x smaller,
  max |log-prob| error ~0.03. Without ``reduce_range`` AVX2's u8 x s8 kernel saturates and the
  error is 10x larger (~0.35); ``QUInt8`` weights are as accurate but slower.
* MatMul/Gemm only: ``ConvInteger`` is ~3x slower than the fp32 convolution here. For the conv
  feature encoder of imported wav2vec2-style models (a third of their arithmetic) issue 25 measured
  again, on a 2-core AMD EPYC (AVX2) with onnxruntime 1.32, frontend of wav2vec2-base on 10 s:
  ``ConvInteger`` 1.07-1.15x the fp32 time, static QDQ (``QLinearConv``, calibrated on 3 clips)
  1.01-1.06x and 5x the error (relative 0.30-0.36 against 0.06). So that MatMul quantisation reaches
  those convolutions, ``models/wav2vec2.py`` runs each multi-channel conv layer as a MatMul over
  its unfolded input frames (the same arithmetic): int8 there is as accurate as ``ConvInteger``,
  needs no calibration audio, and is as fast as the MatMuls of the encoder modules on the CPU at hand.
* Per-tensor scales: per-channel gave no accuracy gain and was no faster.
* Gate predictors keep fp32 weights: they are tiny (nothing to win) and a quantised gate
  could flip decisions near the threshold.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx

from ..errors import ExportError, first_line
from ._util import quiet

__all__ = ["INT8", "quantize_int8"]

# What the manifest records for the int8 variant (``variants.int8.quantization``).
INT8: dict[str, Any] = {
    "method": "dynamic",
    "tool": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "int8",
    "activation_type": "uint8",  # activations are quantised at run time, per tensor
    "reduce_range": True,
    "per_channel": False,
    "op_types": ["MatMul", "Gemm"],
    "fp32_roles": ["gate"],  # graphs of these roles keep fp32 weights
}


def quantize_int8(model: onnx.ModelProto, key: str, role: str) -> onnx.ModelProto:
    """The int8 version of one fp32 graph (an unchanged copy for the roles kept in fp32)."""
    if role in INT8["fp32_roles"]:
        return onnx.ModelProto.FromString(model.SerializeToString())
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="i3d-edge-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        try:
            with quiet():
                quantize_dynamic(src, dst, op_types_to_quantize=list(INT8["op_types"]),
                                 per_channel=INT8["per_channel"], reduce_range=INT8["reduce_range"],
                                 weight_type=QuantType.QInt8)
        except Exception as exc:  # quantiser internals: report them on one line
            raise ExportError(f"int8 quantisation failed for graph {key}: {first_line(exc)}") from exc
        return onnx.load(dst)
