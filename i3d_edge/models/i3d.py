"""The I3D CTC encoder in PyTorch: a model file you can read in one sitting.

features (B, T, n_mels) -> ConvFrontend (x4 subsampling, sinusoidal positions)
-> N pre-LN layers, each its architecture's gated modules in order (:mod:`i3d_edge.module_kinds`):
   transformer ``x = x + g_mha * MHA(LN(x))`` then ``x = x + g_ffn * FFN(LN(x))``; conformer adds
   ``x = x + g_conv * Conv(LN(x))`` after the attention (macaron: half-step FFNs before and after)
-> final LayerNorm + linear + log-softmax (CTC head).

Imported wav2vec2-style models (``cfg.frontend == "waveform"``) read samples (B, N, 1) through
:class:`~i3d_edge.models.wav2vec2.WaveformFrontend`; with ``cfg.layout == "post_ln"`` each module
computes ``y = LN(x + f(x))`` and the head has no LayerNorm. In both layouts a module whose gate
is off leaves x unchanged (exact identity); training mixes ``x + g * (y - x)``.

Gates are per utterance, one per module. A global predictor reads the frontend output once and
predicts all G gates (G = N x modules per layer); a local predictor per layer reads that layer's
input. Training uses a Gumbel (logistic-noise) sigmoid with a straight-through estimator; eval runs
a module when its gate probability exceeds the threshold. Every piece here is also an exported ONNX graph, so each
block keeps a small, export-friendly forward (explicit attention, no fixed-size tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..module_kinds import MODULE_KINDS
from .wav2vec2 import WaveformFrontend, activation

__all__ = ["MODULE_CLASSES", "ConvFrontend", "ConvModule", "CtcHead", "FFNModule", "GatePredictor", "I3DModel",
           "I3DOutput", "MHAModule", "padding_mask", "select_gates"]


def padding_mask(lens: Tensor, max_len: int | Tensor) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=lens.device)[None, :] < lens[:, None]


def sinusoidal_positions(length: int | Tensor, dim: int) -> Tensor:
    """(T, D) sinusoidal encoding computed on the fly: no table, no maximum length."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    inv = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = pos * inv[None, :]  # (T, D/2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(-1, dim)  # interleaved


class ConvFrontend(nn.Module):
    """Two kernel-3 stride-2 convs (x4 in time), linear to d_model, scaled + positions."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.conv_channels
        self.conv = nn.Sequential(nn.Conv2d(1, c, 3, 2), nn.ReLU(), nn.Conv2d(c, c, 3, 2), nn.ReLU())
        freq = ((cfg.n_mels - 1) // 2 - 1) // 2
        self.out = nn.Linear(c * freq, cfg.d_model)
        self.scale = math.sqrt(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, features: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
        # features: (B, T, F), features_lens: (B,) int64
        h = self.conv(features.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = h.shape
        h = self.out(h.transpose(1, 2).reshape(b, t, c * f))  # (B, T', D)
        x = h * self.scale + sinusoidal_positions(t, h.shape[-1]).to(device=h.device, dtype=h.dtype)
        x_lens = torch.div(torch.div(features_lens - 1, 2, rounding_mode="floor") - 1, 2,
                           rounding_mode="floor")
        return self.dropout(x), x_lens


class _Residual(nn.Module):
    """A gated module of kind ``kind``: ``forward`` is the branch f, :meth:`residual` the module's output y."""

    def __init__(self, cfg: ModelConfig, kind: str) -> None:
        super().__init__()
        self.post_ln = cfg.layout == "post_ln"
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.scale = MODULE_KINDS[kind].residual_scale  # 0.5: a macaron half step

    def residual(self, x: Tensor, valid: Tensor | None) -> Tensor:
        """y (B, T, D): pre-LN ``x + scale * f(LN(x))``, post-LN ``LN(x + f(x))``."""
        f = self(x, valid)
        y = x + (f if self.scale == 1.0 else self.scale * f)
        return self.norm(y) if self.post_ln else y

    def delta(self, x: Tensor, valid: Tensor | None) -> Tensor:
        """y - x, what a soft gate scales in training (pre-LN: the branch itself)."""
        return self.residual(x, valid) - x if self.post_ln else self(x, valid)


class MHAModule(_Residual):
    """Multi-head self-attention branch: returns MHA(LN(x)) (pre-LN) or MHA(x) (post-LN)."""

    def __init__(self, cfg: ModelConfig, kind: str = "mha") -> None:
        super().__init__(cfg, kind)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.n_heads = cfg.n_heads
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        # x: (B, T, D); valid: (B, T) bool
        b, t, d = x.shape
        h = self.n_heads
        qkv = self.qkv(x if self.post_ln else self.norm(x))  # (B, T, 3D)
        q, k, v = qkv.reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)  # (B, H, T, dh) each
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))  # (B, H, T, T)
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
        attn = self.attn_dropout(scores.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.dropout(self.proj(out))


class FFNModule(_Residual):
    """Feed-forward branch: returns FFN(LN(x)) (pre-LN) or FFN(x) (post-LN)."""

    def __init__(self, cfg: ModelConfig, kind: str = "ffn") -> None:
        super().__init__(cfg, kind)
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.fc2 = nn.Linear(cfg.d_ff, cfg.d_model)
        self.act = activation(cfg.activation) if cfg.activation != "relu" else None
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        # x: (B, T, D); valid is unused (the module interface of MHA)
        h = self.fc1(x if self.post_ln else self.norm(x))  # (B, T, d_ff)
        h = F.relu(h) if self.act is None else self.act(h)
        return self.dropout(self.fc2(self.dropout(h)))


class ConvModule(_Residual):
    """Conformer convolution branch: pointwise conv (D -> 2D, a Linear over channels), GLU, depthwise
    conv over time (odd kernel, same length), LayerNorm (per frame, unlike the paper's BatchNorm: no
    statistics over padding or batch), Swish, pointwise conv. Padded frames are zeroed before the
    depthwise conv, so a valid frame sees exactly what it would see in a batch of one."""

    def __init__(self, cfg: ModelConfig, kind: str = "conv") -> None:
        super().__init__(cfg, kind)
        d, k = cfg.d_model, cfg.depthwise_kernel
        self.pointwise_in = nn.Linear(d, 2 * d)
        self.depthwise = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.conv_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.pointwise_out = nn.Linear(d, d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        # x: (B, T, D); valid: (B, T) bool
        h = F.glu(self.pointwise_in(x if self.post_ln else self.norm(x)), dim=-1)  # (B, T, D)
        h = h.masked_fill(~valid[:, :, None], 0.0)  # padding never leaks into valid frames
        h = self.depthwise(h.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        return self.dropout(self.pointwise_out(F.silu(self.conv_norm(h))))


# module kind (i3d_edge.module_kinds.MODULE_KINDS) -> its PyTorch module
MODULE_CLASSES: dict[str, type[_Residual]] = {
    "mha": MHAModule, "ffn": FFNModule, "conv": ConvModule, "ffn_pre": FFNModule, "ffn_post": FFNModule}


class GatePredictor(nn.Module):
    """Mean-pool over valid frames, then a small MLP: one logit per gate. (B,T,D) -> (B,G)."""

    def __init__(self, cfg: ModelConfig, n_out: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.gate_hidden), nn.ReLU(),
                                 nn.Linear(cfg.gate_hidden, n_out))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.constant_(self.mlp[2].bias, 3.0)  # start with every gate open (p ~ 0.95)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        w = valid.to(x.dtype)[:, :, None]  # (B, T, 1)
        pooled = (torch.where(valid[:, :, None], x, 0.0)).sum(1) / w.sum(1).clamp(min=1.0)  # (B, D)
        return self.mlp(pooled)  # logits (B, G)


class CtcHead(nn.Module):
    """Final LayerNorm (pre-LN layout only) + linear + log-softmax: (B, T, D) -> (B, T, V)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm: nn.Module = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.layout == "pre_ln" \
            else nn.Identity()
        self.linear = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.norm(x)).log_softmax(dim=-1)


def select_gates(probs: Tensor, threshold: float, max_modules: int | None = None) -> Tensor:
    """Eval-time decisions for a whole (B, G) block of gates: p > threshold, then keep the
    ``max_modules`` most probable. Ties break towards the earlier module (stable sort).
    Mirrors :func:`i3d_edge.gating.select_gates` (numpy) used by the runtime."""
    on = probs > threshold
    if max_modules is not None and max_modules < probs.shape[1]:
        order = torch.sort(-probs, dim=1, stable=True).indices[:, :max_modules]
        keep = torch.zeros_like(on).scatter_(1, order, True)
        on = on & keep
    return on


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard 0/1 decision (exactly 0 or 1); backward: the soft gate's gradient."""

    @staticmethod
    def forward(ctx, soft: Tensor) -> Tensor:  # type: ignore[override]
        return (soft > 0.5).to(soft.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


@dataclass
class I3DOutput:
    log_probs: Tensor  # (B, T', V) CTC log-probabilities
    lens: Tensor  # (B,) valid encoder frames
    gate_probs: Tensor  # (B, G) gate probabilities (ones for a vanilla model)
    gates: Tensor  # (B, G) gates applied: 0/1 floats (straight-through in training)


class I3DModel(nn.Module):
    """I3D encoder with a CTC head; ``cfg.gates`` picks the global, local or no predictor."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend: nn.Module = WaveformFrontend(cfg) if cfg.frontend == "waveform" else ConvFrontend(cfg)
        # one list per kind, named after it (state dict keys mha.3.qkv.weight, conv.0.depthwise.weight ...)
        self.by_kind: dict[str, nn.ModuleList] = {}
        for kind in cfg.layer_kinds:
            self.by_kind[kind] = nn.ModuleList(MODULE_CLASSES[kind](cfg, kind) for _ in range(cfg.n_layers))
            self.add_module(kind, self.by_kind[kind])
        if cfg.gates == "global":
            self.gate = GatePredictor(cfg, cfg.n_gates)
        elif cfg.gates == "local":
            self.local_gates = nn.ModuleList(GatePredictor(cfg, len(cfg.layer_kinds)) for _ in range(cfg.n_layers))
        self.head = CtcHead(cfg)
        self.temperature = 1.0  # Gumbel-sigmoid temperature (training)

    def forward(
        self,
        features: Tensor,  # (B, T, n_mels) normalised log-mel, or (B, N, 1) samples (waveform frontend)
        features_lens: Tensor,  # (B,) int64
        *,
        threshold: float | None = None,  # eval: run a module when p > threshold
        max_modules: int | None = None,  # eval: keep at most this many modules per utterance
        full_depth: bool = False,  # run every module (also the training warm-up)
        module_mask: Tensor | None = None,  # (G,) 0/1: statically removed modules never run (pruning)
    ) -> I3DOutput:
        cfg = self.cfg
        threshold = cfg.gate_threshold if threshold is None else threshold
        x, lens = self.frontend(features, features_lens)  # (B, T', D), (B,)
        valid = padding_mask(lens, x.shape[1])  # (B, T')
        b, k = x.shape[0], len(cfg.layer_kinds)
        ones = x.new_ones(b, k)
        probs_all, gates_all = [], []
        plan = None
        if cfg.gates == "global":
            logits = self.gate(x, valid)  # (B, G)
            probs = logits.sigmoid()
            plan = self._decide(logits, probs, threshold, max_modules, full_depth)
            probs_all, gates_all = [probs], [plan]
        executed = torch.zeros(b, dtype=torch.long, device=x.device)
        # statically removed modules (pruning) are never called: one host copy of the mask per forward
        removed = [v == 0 for v in module_mask.tolist()] if module_mask is not None else [False] * cfg.n_gates
        for i in range(cfg.n_layers):
            if plan is not None:
                g = plan[:, k * i: k * i + k]
            elif cfg.gates == "local":
                logits = self.local_gates[i](x, valid)  # (B, k)
                probs = logits.sigmoid()
                g = self._decide(logits, probs, threshold, None, full_depth)
                if max_modules is not None and not self.training and not full_depth:
                    # greedy budget in execution order: stop once max_modules have run
                    cols, ran = [], executed
                    for j in range(k):
                        cols.append(g[:, j] * (ran < max_modules))
                        ran = ran + cols[-1].long()
                    g = torch.stack(cols, dim=1)
                executed = executed + g.long().sum(1)
                probs_all.append(probs)
                gates_all.append(g)
            else:
                g = ones
            for j, kind in enumerate(cfg.layer_kinds):
                if not removed[k * i + j]:
                    x = self.gated(x, valid, g[:, j], self.by_kind[kind][i])
        gate_probs = torch.cat(probs_all, dim=1) if probs_all else x.new_ones(b, cfg.n_gates)
        gates = torch.cat(gates_all, dim=1) if gates_all else x.new_ones(b, cfg.n_gates)
        if module_mask is not None:
            gates = gates * module_mask.to(gates.dtype)
        return I3DOutput(self.head(x), lens, gate_probs, gates)

    def _decide(self, logits: Tensor, probs: Tensor, threshold: float, max_modules: int | None,
                full_depth: bool) -> Tensor:
        """Gate values (B, G) as 0/1 floats: Gumbel-sigmoid + straight-through when training."""
        if full_depth:
            return torch.ones_like(probs)
        if self.training:
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            soft = ((logits + torch.log(u) - torch.log1p(-u)) / self.temperature).sigmoid()
            return _StraightThrough.apply(soft)
        return select_gates(probs, threshold, max_modules).to(probs.dtype)

    def gated(self, x: Tensor, valid: Tensor, g: Tensor, module: _Residual) -> Tensor:
        """x + g * (y - x) with y the module's output; in eval a gate of 0 returns x itself (exact
        identity) and the module only runs on the rows whose gate is on."""
        if self.training:
            return x + g[:, None, None] * module.delta(x, valid)
        on = g > 0.5
        if bool(on.all()):
            return module.residual(x, valid)
        if not bool(on.any()):
            return x
        rows = on.nonzero().squeeze(1)
        out = x.clone()
        out[rows] = module.residual(x[rows], valid[rows])
        return out
