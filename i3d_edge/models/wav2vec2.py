"""Raw-waveform frontend of wav2vec2-style models (wav2vec2, HuBERT, data2vec-audio).

samples (B, N, 1) -> conv feature encoder (B, T', C) -> feature projection (LayerNorm + Linear)
-> + convolutional positional embedding -> [post-LN layout: the encoder's LayerNorm] -> x (B, T', D).

Batches are padded, so everything is computed as if each row ran alone: the GroupNorm of the
first conv layer takes its statistics over the row's valid frames only, and the positional
convolution sees zeros past the end of a row (before every layer of a data2vec stack), exactly
what a row of its own sees through the convolution's zero padding. Hugging Face's batched
forward differs from its one-row forward on both counts; its one-row forward is the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import ModelConfig, WaveformConfig

__all__ = ["WaveformFrontend", "activation", "fold_weight_norm"]


def activation(name: str) -> nn.Module:
    """The module of an activation name of the config: relu or gelu (exact, erf)."""
    return nn.GELU() if name == "gelu" else nn.ReLU()


def _frame_mask(lens: Tensor, length: int | Tensor) -> Tensor:
    """(B,) -> (B, 1, T) float: 1 on valid frames."""
    return (torch.arange(length, device=lens.device)[None, :] < lens[:, None]).to(torch.float32)[:, None, :]


class _ConvLayer(nn.Module):
    """Conv1d + optional norm + activation, time-major: (B, T, C_in) -> (B, T', C_out).

    A layer with several input channels runs as one MatMul over its unfolded input (the k input
    frames of each output frame side by side: (B, T', k C_in) @ (k C_in, C_out)) with the Conv1d's
    own weight: the same arithmetic as the convolution, but as a MatMul, which the int8 variant's
    dynamic quantisation reaches (onnxruntime's ConvInteger and static QDQ convolutions were no
    faster than the fp32 convolution on our CPUs; benchmarks/IMPORT.md). The first layer (one input
    channel, a 10-tap filter) stays a convolution: too little arithmetic per output to gain."""

    def __init__(self, wc: WaveformConfig, i: int) -> None:
        super().__init__()
        c_in = wc.conv_dim[i - 1] if i > 0 else 1
        c_out = wc.conv_dim[i]
        self.kernel, self.stride = wc.conv_kernel[i], wc.conv_stride[i]
        self.conv = nn.Conv1d(c_in, c_out, self.kernel, self.stride, bias=wc.conv_bias)
        self.norm_kind = "layer" if wc.conv_norm == "layer" else ("group" if i == 0 else "none")
        self.norm: nn.Module
        if self.norm_kind == "layer":
            self.norm = nn.LayerNorm(c_out)
        elif self.norm_kind == "group":  # GroupNorm(C, C): per-channel statistics over time
            self.norm = nn.GroupNorm(c_out, c_out)
        else:
            self.norm = nn.Identity()
        self.act = activation(wc.activation)

    def forward(self, h: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        # h: (B, T, C_in), lens: (B,) valid frames of h
        if self.conv.in_channels == 1:
            h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # (B, T', C_out)
        else:
            k, s = self.kernel, self.stride
            t_out = (h.shape[1] - k) // s + 1
            frames = torch.cat([h[:, j: j + s * (t_out - 1) + 1: s] for j in range(k)], dim=2)  # (B, T', k C_in)
            weight = self.conv.weight.permute(0, 2, 1).reshape(self.conv.out_channels, -1)  # (C_out, k C_in)
            h = F.linear(frames, weight, self.conv.bias)  # (B, T', C_out)
        lens = torch.div(lens - self.kernel, self.stride, rounding_mode="floor") + 1
        if self.norm_kind == "layer":
            h = self.norm(h)
        elif self.norm_kind == "group":
            h = self._masked_group_norm(h, lens)
        return self.act(h), lens

    def _masked_group_norm(self, h: Tensor, lens: Tensor) -> Tensor:
        """GroupNorm(C, C) with statistics over each row's valid frames only; h: (B, T, C)."""
        norm = self.norm
        assert isinstance(norm, nn.GroupNorm)
        m = _frame_mask(lens, h.shape[1]).to(h.dtype).transpose(1, 2)  # (B, T, 1)
        n = m.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
        mean = (h * m).sum(dim=1, keepdim=True) / n  # (B, 1, C)
        var = (((h - mean) * m) ** 2).sum(dim=1, keepdim=True) / n  # (B, 1, C), biased as GroupNorm
        h = (h - mean) / torch.sqrt(var + norm.eps)
        return h * norm.weight + norm.bias


class _PosConv(nn.Module):
    """One positional convolution: Conv1d(k, padding k//2, groups), drop the last frame for an
    even kernel, [data2vec: LayerNorm without affine], activation. (B, D, T) -> (B, D, T)."""

    def __init__(self, wc: WaveformConfig, d_model: int) -> None:
        super().__init__()
        k = wc.pos_conv_kernel
        self.conv = nn.Conv1d(d_model, d_model, k, padding=k // 2, groups=wc.pos_conv_groups)
        self.remove = 1 if k % 2 == 0 else 0
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False) if wc.pos_conv == "data2vec" else None
        self.act = activation(wc.activation)

    def forward(self, h: Tensor) -> Tensor:
        t = h.shape[2]
        h = self.conv(h)[:, :, :t]  # (B, D, T + 1 - remove) -> (B, D, T)
        if self.norm is not None:
            h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        return self.act(h)


class WaveformFrontend(nn.Module):
    """features (B, N, 1) samples, features_lens (B,) -> x (B, T', D), x_lens (B,)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        wc = cfg.waveform
        assert wc is not None
        self.conv_layers = nn.ModuleList(_ConvLayer(wc, i) for i in range(len(wc.conv_dim)))
        self.proj_norm = nn.LayerNorm(wc.conv_dim[-1], eps=cfg.layer_norm_eps) if wc.proj_norm else nn.Identity()
        self.proj = nn.Linear(wc.conv_dim[-1], cfg.d_model)
        n_pos = wc.pos_conv_layers if wc.pos_conv == "data2vec" else 1
        self.pos_conv = nn.ModuleList(_PosConv(wc, cfg.d_model) for _ in range(n_pos))
        # post-LN models normalise the embedded input before the first layer; pre-LN ones after the last
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.layout == "post_ln" else nn.Identity()
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, features: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
        # features: (B, N, 1) samples, features_lens: (B,) int64
        h, lens = features, features_lens  # (B, N, 1): time-major, as every conv layer
        for layer in self.conv_layers:
            h, lens = layer(h, lens)  # (B, T', C), (B,)
        x = self.proj(self.proj_norm(h))  # (B, T', D)
        m = _frame_mask(lens, x.shape[1]).to(x.dtype)  # (B, 1, T')
        pos = x.transpose(1, 2) * m  # (B, D, T'): padded frames are zero, as for a row alone
        for i, layer in enumerate(self.pos_conv):
            pos = layer(pos if i == 0 else pos * m)
        x = self.norm(x * m.transpose(1, 2) + pos.transpose(1, 2))  # (B, T', D)
        return self.dropout(x), lens


def fold_weight_norm(g: Tensor, v: Tensor) -> Tensor:
    """The weight of ``weight_norm(conv, dim=2)``: v * g / ||v|| with the norm over dims 0, 1."""
    norm = v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()  # (1, 1, K)
    return v * (g / norm)

