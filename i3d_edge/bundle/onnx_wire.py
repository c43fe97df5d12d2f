"""Read the summary ``inspect`` shows of an ONNX graph straight from its protobuf bytes, without
the onnx package (the base install has onnxruntime, which cannot list initializers or opsets).

Only the fields :func:`graph_summary` needs are decoded (ModelProto: ir_version 1, graph 7,
opset_import 8, metadata_props 14; GraphProto: node 1, initializer 5, input 11, output 12;
TensorProto.dims 1; ValueInfoProto.name 1); everything else is skipped by its length. Every
length is checked against the buffer, so a damaged file is a ValueError, never a crash or a
large allocation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["graph_summary"]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or invalid varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value: int for varints/fixed, memoryview for length-delimited)."""
    pos = 0
    value: Any  # an int (varint, fixed) or a memoryview (length-delimited)
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > len(buf):
                raise ValueError("truncated fixed-size field")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if size > len(buf) - pos:
                raise ValueError("a field runs past the end of the data")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _int64s(wire: int, value: Any) -> list[int]:
    """A repeated int64 field, packed (wire 2) or not (wire 0); two's complement for negatives."""
    if wire == 0:
        raw = [value]
    else:
        raw, pos = [], 0
        while pos < len(value):
            item, pos = _varint(value, pos)
            raw.append(item)
    return [v - (1 << 64) if v >= 1 << 63 else v for v in raw]


def _string(value: Any) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _name(message: memoryview) -> str:
    return next((_string(v) for n, w, v in _fields(message) if n == 1 and w == 2), "")


def graph_summary(data: bytes) -> dict[str, Any]:
    """``{"params", "opset", "ir_version", "inputs", "outputs", "nodes", "metadata"}`` of a
    serialised ModelProto, as ``onnx.load`` would give them. Raises ValueError."""
    buf = memoryview(data)
    ir_version = None
    opset = None
    metadata: dict[str, str] = {}
    params = nodes = 0
    inputs: list[str] = []
    outputs: list[str] = []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 0:
            ir_version = value
        elif number == 8 and wire == 2:
            domain, version = "", None
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    domain = _string(v)
                elif n == 2 and w == 0:
                    version = v
            if domain in ("", "ai.onnx") and opset is None:
                opset = version
        elif number == 14 and wire == 2:
            entry = {n: _string(v) for n, w, v in _fields(value) if w == 2 and n in (1, 2)}
            metadata[entry.get(1, "")] = entry.get(2, "")
        elif number == 7 and wire == 2:
            for n, w, v in _fields(value):
                if w != 2:
                    continue
                if n == 1:
                    nodes += 1
                elif n == 5:
                    dims = [d for fn, fw, fv in _fields(v) if fn == 1 for d in _int64s(fw, fv)]
                    params += math.prod(dims)
                elif n == 11:
                    inputs.append(_name(v))
                elif n == 12:
                    outputs.append(_name(v))
    if ir_version is None:
        raise ValueError("no ir_version: not an ONNX model")
    return {"params": params, "opset": opset, "ir_version": ir_version, "inputs": inputs, "outputs": outputs,
            "nodes": nodes, "metadata": metadata}
