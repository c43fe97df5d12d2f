"""The dynamic-depth forward pass over the per-module sessions (numpy + onnxruntime).

frontend -> gates (global: all G up front; local: each layer's just before it) -> every module in
order (a layer's kinds are the bundle's ``module_kinds`` table), run only on the rows whose gate is
on (a tensor whose gate is off passes through untouched) -> head. Decisions come from
:mod:`i3d_edge.gating`, the numpy mirror of ``I3DModel``'s eval forward, so the runtime skips exactly
what the torch model skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from ..errors import AudioError
from ..gating import local_budget, select_gates
from ..manifest import Manifest, local_gate_key, role_of
from ..module_kinds import MODULE_KINDS
from .options import RuntimeOptions
from .results import ForwardOutput
from .sessions import SessionPool

__all__ = ["Encoder"]


@dataclass(frozen=True)
class _Module:
    """One gated module graph of the execution plan."""

    key: str  # graph key, e.g. "layer03.ffn"
    gate: int  # column in the (B, G) gate matrix
    needs_lens: bool  # the kind's graph takes x_lens (attention, convolution masks) besides x


def _all_rows(on: np.ndarray) -> list[bool]:
    """(B, G) bool -> G python bools: is the column set in every row."""
    return np.logical_and.reduce(on, axis=0).tolist()


class Encoder:
    """Runs a bundle's graphs on padded batches with the knobs of one ``RuntimeOptions``."""

    def __init__(self, manifest: Manifest, pool: SessionPool, options: RuntimeOptions) -> None:
        self._pool = pool
        self._n_mels = manifest.model_config.n_mels
        self._encoder_lengths = manifest.model_config.encoder_lengths  # input frames -> encoder frames
        wave = manifest.model_config.waveform
        self._min_frames = 7 if wave is None else wave.receptive_field  # input frames of one encoder frame
        self._n_gates = manifest.model_config.n_gates
        self._predictor = manifest.predictor
        self._threshold = manifest.threshold if options.threshold is None else options.threshold
        self._max_modules = options.max_modules
        self._full_depth = options.full_depth
        modules = tuple(_Module(key, i, MODULE_KINDS[role_of(key)].needs_lens)
                        for i, key in enumerate(manifest.modules))
        k = len(manifest.model_config.layer_kinds)
        # (local gate key or None, the layer's modules) per layer, in execution order
        self._layers = tuple((local_gate_key(i) if self._predictor == "local" else None, modules[k * i: k * i + k])
                             for i in range(manifest.model_config.n_layers))

    @property
    def threshold(self) -> float:
        return self._threshold

    def forward(self, features: np.ndarray, features_lens: np.ndarray) -> ForwardOutput:
        """features (B, T, F) float32 normalised log-mel, features_lens (B,) int64 -> ForwardOutput."""
        features, features_lens = self._check(features, features_lens)
        run = self._pool.run
        t0 = perf_counter()
        x, x_lens = run("frontend", {"features": features, "features_lens": features_lens})  # (B,T',D), (B,)
        x = np.require(x, requirements="W")  # modules write their rows back into x (copied only if read-only)
        t_max = int(x_lens.max())
        b = x.shape[0]
        t1 = perf_counter()
        executed = np.zeros(b, dtype=np.int64)  # local budget: modules run so far per row
        if self._predictor == "global":
            probs = run("gate", {"x": x, "x_lens": x_lens})[0]  # (B, G)
            gates = np.ones(probs.shape, dtype=bool) if self._full_depth else \
                select_gates(probs, self._threshold, self._max_modules)
        else:  # vanilla bundle: every module runs; local: each layer's columns are set in the loop below
            probs = np.ones((b, self._n_gates), dtype=np.float32)
            gates = np.ones((b, self._n_gates), dtype=bool)
        every = _all_rows(gates)  # per module: every row runs it (python bools: cheap in the loop)
        t_gates = perf_counter() - t1
        t_modules = 0.0
        module_runs: dict[str, tuple[int, int]] = {}
        whole = t_max == x.shape[1]  # no padding beyond the longest row: all-rows runs need no gather
        for gate_key, modules in self._layers:
            if gate_key is not None:
                tg = perf_counter()
                layer_probs = run(gate_key, {"x": x, "x_lens": x_lens})[0]  # (B, K): the layer's modules
                layer = np.ones(layer_probs.shape, dtype=bool) if self._full_depth else local_budget(
                    select_gates(layer_probs, self._threshold), executed, self._max_modules)
                cols = slice(modules[0].gate, modules[-1].gate + 1)
                probs[:, cols] = layer_probs
                gates[:, cols] = layer
                every[cols] = _all_rows(layer)
                t_gates += perf_counter() - tg
            tm = perf_counter()
            for module in modules:
                if every[module.gate] and whole:
                    x = self._run(module, x, x_lens, module_runs)  # the whole batch as is
                else:
                    x = self._rows(module, x, x_lens, gates[:, module.gate], module_runs)
            t_modules += perf_counter() - tm
        t2 = perf_counter()
        log_probs = run("head", {"encoder_out": x})[0]  # (B, T', V)
        t3 = perf_counter()
        timings = {"frontend": t1 - t0, "gates": t_gates, "modules": t_modules, "head": t3 - t2}
        return ForwardOutput(log_probs, x_lens, probs, gates, timings, module_runs)

    def _rows(self, module: _Module, x: np.ndarray, x_lens: np.ndarray, on: np.ndarray,
              runs: dict[str, tuple[int, int]]) -> np.ndarray:
        """x (B, T', D) after ``module`` on the rows where ``on`` (B,) is set; other rows untouched."""
        rows = np.flatnonzero(on)  # (R,)
        if rows.size == 0:
            return x  # no row needs it: the session is never run
        sub_lens = x_lens[rows]  # (R,)
        t = int(sub_lens.max())  # padding past the longest selected row is masked anyway
        x[rows, :t] = self._run(module, x[rows, :t], sub_lens, runs)  # gather (R, t, D), run, scatter back
        return x

    def _run(self, module: _Module, x: np.ndarray, x_lens: np.ndarray, runs: dict[str, tuple[int, int]]
             ) -> np.ndarray:
        """``module``'s session on x (R, t, D); records the (rows, frames) fed to it in ``runs``."""
        feeds = {"x": x, "x_lens": x_lens} if module.needs_lens else {"x": x}
        runs[module.key] = (int(x.shape[0]), int(x.shape[1]))
        return self._pool.run(module.key, feeds)[0]

    def _check(self, features: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = np.ascontiguousarray(features, dtype=np.float32)
        lens = np.ascontiguousarray(lens, dtype=np.int64)
        if features.ndim != 3 or features.shape[2] != self._n_mels:
            raise AudioError(f"features: expected shape (batch, frames, {self._n_mels}), got {features.shape}")
        if lens.shape != (features.shape[0],) or features.shape[0] == 0:
            raise AudioError(f"features_lens: expected shape ({features.shape[0]},) with batch >= 1, "
                             f"got {lens.shape}")
        if (lens > features.shape[1]).any() or (self._encoder_lengths(lens) < 1).any():
            raise AudioError(f"features_lens: each length must be between {self._min_frames} (one encoder frame) and "
                             f"{features.shape[1]} frames, got {lens.tolist()}")
        return features, lens
