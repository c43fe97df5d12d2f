"""One ONNX graph per bundle role: thin torch wrappers around the model's submodules.

Every wrapper has exactly the interface of its role in :data:`i3d_edge.manifest.GRAPH_IO`
(positional inputs in that order, outputs in that order), so the same wrapper is what gets
exported and what the verification runs as the torch reference of that graph.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import onnx
import torch
from torch import Tensor, nn

from .. import __version__
from ..config import ModelConfig
from ..errors import ExportError, first_line
from ..manifest import GRAPH_IO, local_gate_key
from ..models.i3d import I3DModel, padding_mask
from ._util import quiet

__all__ = ["ENCODER_TIME_TENSORS", "MAX_OPSET", "MIN_OPSET", "GraphSpec", "export_graph", "graph_specs", "set_metadata"]

MIN_OPSET = 17  # LayerNormalization is a single op from opset 17 on
MAX_OPSET = 20  # the TorchScript exporter's newest opset

# Symbolic axis names of every graph tensor: batch and time are dynamic everywhere.
_AXES: dict[str, dict[int, str]] = {
    "features": {0: "batch", 1: "frames"},
    "features_lens": {0: "batch"},
    "x": {0: "batch", 1: "enc_frames"},
    "x_lens": {0: "batch"},
    "y": {0: "batch", 1: "enc_frames"},
    "gate_probs": {0: "batch"},
    "encoder_out": {0: "batch", 1: "enc_frames"},
    "log_probs": {0: "batch", 1: "enc_frames"},
    "log_probs_lens": {0: "batch"},
}
# Tensors with an encoder-time axis: compared on valid (unpadded) frames only.
ENCODER_TIME_TENSORS = frozenset(name for name, axes in _AXES.items() if axes.get(1) == "enc_frames")


class FrontendGraph(nn.Module):
    """features (B, T, F), features_lens (B,) -> x (B, T', D), x_lens (B,)."""

    def __init__(self, model: I3DModel) -> None:
        super().__init__()
        self.frontend = model.frontend

    def forward(self, features: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
        return self.frontend(features, features_lens)


class GateGraph(nn.Module):
    """x (B, T', D), x_lens (B,) -> gate_probs (B, G): the global (G = 2N) or a local (G = 2) predictor."""

    def __init__(self, predictor: nn.Module) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, x: Tensor, x_lens: Tensor) -> Tensor:
        return stable_sigmoid(self.predictor(x, padding_mask(x_lens, x.shape[1])))  # (B, G)


def stable_sigmoid(logits: Tensor) -> Tensor:
    """sigmoid with full relative precision for small probabilities, as ``torch.sigmoid``.

    onnxruntime's Sigmoid kernel returns exactly 0 below logits of about -18 (torch: 1.5e-8),
    which flips ``p > threshold`` decisions at threshold 0; ``exp(-|z|)`` never overflows and
    keeps probabilities down to ~1e-38."""
    e = torch.exp(-logits.abs())
    return torch.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class ModuleGraph(nn.Module):
    """x (B, T', D)[, x_lens (B,)] -> y = x + scale * f(LN(x)) (B, T', D) (post-LN: LN(x + f(x))): one
    gated module of any kind; x_lens (the valid-frame mask) is an input when the kind needs it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor, x_lens: Tensor | None = None) -> Tensor:
        return self.module.residual(x, None if x_lens is None else padding_mask(x_lens, x.shape[1]))


class HeadGraph(nn.Module):
    """encoder_out (B, T', D) -> log_probs (B, T', V)."""

    def __init__(self, model: I3DModel) -> None:
        super().__init__()
        self.head = model.head

    def forward(self, encoder_out: Tensor) -> Tensor:
        return self.head(encoder_out)


class MonolithicGraph(nn.Module):
    """features, features_lens -> log_probs (B, T', V), log_probs_lens (B,): every module runs."""

    def __init__(self, model: I3DModel) -> None:
        super().__init__()
        cfg = model.cfg
        self.frontend = FrontendGraph(model)
        self.blocks = nn.ModuleList(ModuleGraph(model.by_kind[kind][i])
                                    for i in range(cfg.n_layers) for kind in cfg.layer_kinds)  # execution order
        self.head = HeadGraph(model)

    def forward(self, features: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
        x, x_lens = self.frontend(features, features_lens)  # (B, T', D), (B,)
        for block in self.blocks:
            x = block(x, x_lens)  # (B, T', D); kinds without a mask ignore it
        return self.head(x), x_lens


@dataclass(frozen=True)
class GraphSpec:
    """One graph of a bundle: its manifest key, its role (a GRAPH_IO key) and its torch wrapper."""

    key: str  # frontend | gate | layerNN.gate | layerNN.KIND (a module kind) | head | monolithic
    role: str
    layer: int | None  # encoder layer of a per-layer graph
    module: nn.Module  # eval mode; also the torch reference of the graph

    @property
    def filename(self) -> str:
        return f"{self.key}.onnx"

    @property
    def inputs(self) -> tuple[str, ...]:
        return GRAPH_IO[self.role][0]

    @property
    def outputs(self) -> tuple[str, ...]:
        return GRAPH_IO[self.role][1]


def graph_specs(model: I3DModel, *, monolithic: bool = False) -> list[GraphSpec]:
    """Every graph of the bundle of ``model``, in execution order (a local gate before its layer)."""
    cfg = model.cfg
    specs = [GraphSpec("frontend", "frontend", None, FrontendGraph(model))]
    if cfg.gates == "global":
        specs.append(GraphSpec("gate", "gate", None, GateGraph(model.gate)))
    names = iter(cfg.module_names)  # layer00.mha, layer00.ffn, ...
    for i in range(cfg.n_layers):
        if cfg.gates == "local":
            specs.append(GraphSpec(local_gate_key(i), "gate", i, GateGraph(model.local_gates[i])))
        for kind in cfg.layer_kinds:
            specs.append(GraphSpec(next(names), kind, i, ModuleGraph(model.by_kind[kind][i])))
    specs.append(GraphSpec("head", "head", None, HeadGraph(model)))
    if monolithic:
        specs.append(GraphSpec("monolithic", "monolithic", None, MonolithicGraph(model)))
    for spec in specs:
        spec.module.eval()  # the exporter restores the wrapper's mode, which must stay eval
    return specs


def _example_inputs(role: str, cfg: ModelConfig) -> tuple[Tensor, ...]:
    """Tracing inputs: a padded batch of two, so that no batch or time size is special."""
    gen = torch.Generator().manual_seed(0)
    if role in ("frontend", "monolithic") and cfg.waveform is not None:
        n = cfg.waveform.receptive_field + 9 * cfg.waveform.stride  # 10 encoder frames
        return torch.randn(2, n, 1, generator=gen), torch.tensor([n, n - 3 * cfg.waveform.stride - 7])
    if role in ("frontend", "monolithic"):
        return torch.randn(2, 64, cfg.n_mels, generator=gen), torch.tensor([64, 41])  # (B, T, F), (B,)
    x = torch.randn(2, 15, cfg.d_model, generator=gen)  # (B, T', D)
    return (x, torch.tensor([15, 9])) if "x_lens" in GRAPH_IO[role][0] else (x,)


def export_graph(spec: GraphSpec, cfg: ModelConfig, *, opset: int, simplify: bool) -> onnx.ModelProto:
    """Trace ``spec.module`` with the TorchScript exporter (dynamic batch/time), then onnxsim it."""
    buf = io.BytesIO()
    try:
        with quiet(), torch.no_grad():
            torch.onnx.export(
                spec.module, _example_inputs(spec.role, cfg), buf,  # type: ignore[arg-type]  # file objects work
                input_names=list(spec.inputs), output_names=list(spec.outputs),
                dynamic_axes={name: _AXES[name] for name in (*spec.inputs, *spec.outputs)},
                opset_version=opset, do_constant_folding=True, dynamo=False)
    except Exception as exc:  # exporter internals: report them on one line
        raise ExportError(f"torch.onnx.export failed for graph {spec.key}: {first_line(exc)}") from exc
    model = onnx.load_from_string(buf.getvalue())
    return _simplify(model, spec.key) if simplify else model


def _simplify(model: onnx.ModelProto, key: str) -> onnx.ModelProto:
    import onnxsim

    try:
        with quiet():
            simplified, ok = onnxsim.simplify(model, certify=False)
    except Exception as exc:
        raise ExportError(f"onnxsim failed on graph {key}: {first_line(exc)} (try --no-simplify)") from exc
    if not ok:
        raise ExportError(f"onnxsim could not validate graph {key} (try --no-simplify)")
    return simplified


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace the graph's metadata_props with ``props`` (string keys and values)."""
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "i3d-edge"
    model.producer_version = __version__

