"""The encoder's gated module kinds and the layer each architecture builds from them (no torch here).

This table is part of the bundle contract. Config (gate count, module names), the PyTorch model,
export (one graph per module), the runtime's interface check and the encoder loop all read it, so
a new kind is one row of :data:`MODULE_KINDS` plus its PyTorch module (``models/i3d.py``), and a
new layer shape is one row of :data:`ARCHITECTURES`.

Every kind is one gated module: one gate column, one ONNX graph per layer (key ``layerNN.KIND``)
with input ``x`` (B, T', D), also ``x_lens`` (B,) when it needs the valid lengths (attention's key
mask, the convolution's time mask), and output ``y`` (B, T', D). With the layer's pre-LN layout
``y = x + scale * f(LN(x))`` (post-LN: ``y = LN(x + f(x))``); a gate that is off gives ``y = x``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHITECTURES", "MODULE_KINDS", "ModuleKind", "module_io"]


@dataclass(frozen=True)
class ModuleKind:
    """One row of the table: what a module of this kind is to every reader of a bundle."""

    name: str  # the key suffix of its graphs (layer03.conv) and its gate's name
    needs_lens: bool  # graph inputs: (x, x_lens) when True, (x,) when False
    residual_scale: float  # y = x + scale * f(LN(x)); 0.5: a macaron half-step feed-forward module
    summary: str  # the branch f, for people (manifest docs, inspect)
    square_weights: int  # lower bound on its weights: this many D x D matrices ...
    ff_weights: int  # ... plus this many D x d_ff ones (limits.min_weights)


MODULE_KINDS: dict[str, ModuleKind] = {kind.name: kind for kind in (
    ModuleKind("mha", True, 1.0, "multi-head self-attention, padded keys masked", 4, 0),
    ModuleKind("ffn", False, 1.0, "feed-forward: linear, activation, linear", 0, 2),
    ModuleKind("conv", True, 1.0, "Conformer convolution: pointwise, GLU, depthwise over time (padding "
                                  "masked), LayerNorm, Swish, pointwise", 3, 0),
    ModuleKind("ffn_pre", False, 0.5, "macaron half-step feed-forward before the attention", 0, 2),
    ModuleKind("ffn_post", False, 0.5, "macaron half-step feed-forward after the convolution", 0, 2),
)}

# architecture -> the kinds of one layer, in execution order (a layer's share of the gates)
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "transformer": ("mha", "ffn"),
    "conformer": ("mha", "conv", "ffn"),
    "conformer-macaron": ("ffn_pre", "mha", "conv", "ffn_post"),
}


def module_io(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input names, output names) of a module graph of ``kind``."""
    return (("x", "x_lens") if MODULE_KINDS[kind].needs_lens else ("x",)), ("y",)
