"""Shared fixtures: small random checkpoints and their exported bundles, cached per session."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# Set by scripts/mutation.sh only: checkpoints and bundles are built once into this folder and
# reused by every later pytest run (a mutant's run must not re-export the fixtures).
FIXTURE_CACHE = os.environ.get("I3D_EDGE_TEST_FIXTURE_CACHE")


def _cached(root: Path, key: tuple, index: int, suffix: str = "") -> Path:
    """Fixture path for ``key``: in FIXTURE_CACHE (stable name) when set, else under ``root``."""
    if FIXTURE_CACHE:
        return Path(FIXTURE_CACHE) / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", repr(key)) + suffix)
    return root / f"{index}{suffix}"


def small_config(gates: str = "global", layers: int = 2, **kw):  # -> ModelConfig
    from i3d_edge.config import ModelConfig

    base = dict(n_layers=layers, d_model=64, n_heads=2, d_ff=128, conv_channels=8, gate_hidden=16, gates=gates)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory) -> Callable[..., Path]:
    """make_checkpoint(gates="global", layers=2, seed=0, **config) -> path of a random ckpt.pt."""
    pytest.importorskip("torch", reason="checkpoint fixtures need the [export] extra")
    from i3d_edge.models.checkpoint import random_checkpoint, save_checkpoint

    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("ckpts")

    def make(gates: str = "global", layers: int = 2, seed: int = 0, **kw) -> Path:
        key = (gates, layers, seed, tuple(sorted(kw.items())))
        if key not in cache:
            path = _cached(root, key, len(cache), ".pt")
            if not path.is_file():
                save_checkpoint(path, random_checkpoint(small_config(gates, layers, **kw), seed=seed))
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory, make_checkpoint) -> Callable[..., Path]:
    """make_bundle(gates="global", layers=2, quantize=None, monolithic=False, **config) -> bundle dir.

    Bundles are exported (and verified) once per session and shared read-only between tests:
    a test that modifies a bundle must copy it first (shutil.copytree).
    """
    from i3d_edge.export import export_bundle

    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("bundles")

    def make(gates: str = "global", layers: int = 2, quantize: str | None = None, monolithic: bool = False,
             seed: int = 0, **kw) -> Path:
        key = (gates, layers, quantize, monolithic, seed, tuple(sorted(kw.items())))
        if key not in cache:
            out = _cached(root, key, len(cache))
            if not (out / "manifest.json").is_file():
                export_bundle(make_checkpoint(gates, layers, seed, **kw), out, quantize=quantize,
                              monolithic=monolithic, force=True)
            cache[key] = out
        return cache[key]

    return make


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like test audio: amplitude-modulated harmonics plus noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 40 * rng.random()
    sig = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + 3 * rng.random()) * t) ** 2
    audio = 0.2 * env * sig + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


@pytest.fixture
def block_torch(monkeypatch):
    """Make ``import torch`` fail for the duration of a test (modules already imported are hidden)."""
    import importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    for name in list(sys.modules):
        if name == "torch" or name.startswith("torch."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Block(), *sys.meta_path])
    yield


def signal_when(args: list[str], ready: Callable[[], bool], sig: int, env: dict[str, str] | None = None,
                what: str = "the process") -> tuple[int, str, str]:
    """Run ``args``; once ``ready()`` holds (polled every 10 ms, for at most 240 s) send ``sig``.
    Returns (exit status, stdout, stderr); the process never outlives the call."""
    import subprocess
    import time

    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not ready():
            assert proc.poll() is None, f"{what} ended before the signal was due: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{what} never reached the point of the signal"
            time.sleep(0.01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr
