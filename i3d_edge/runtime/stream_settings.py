"""How a live stream finds utterances: :class:`StreamSettings`, with its defaults, help and checks
in one place (the ``listen`` command reads them from here without loading numpy or a detector)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import setting
from ..errors import ConfigError

__all__ = ["VAD_NAMES", "StreamSettings"]

# Detectors of .vad (silero: the default, chosen by measurement in benchmarks/VAD.md)
VAD_NAMES = ("silero", "silero-lite", "webrtc", "webrtc0", "webrtc1", "webrtc2", "webrtc3", "ten")


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class StreamSettings:
    """How a live stream finds utterances (seconds unless stated)."""

    vad: str = setting("silero", f"Voice activity detector: {', '.join(VAD_NAMES)}.")
    threshold: float = setting(0.5, "A frame is speech when the VAD's probability is at least this "
                                    "(0.15 less inside an utterance).")
    min_silence: float = setting(0.5, "Seconds of non-speech that end an utterance.")
    padding: float = setting(0.2, "Seconds of audio kept before and after the speech (at most min_silence).")
    min_speech: float = setting(0.25, "Speech shorter than this is dropped as a false start.")
    max_utterance: float = setting(20.0, "Longer speech is cut at its quietest point before this many seconds.")

    def __post_init__(self) -> None:
        if self.vad not in VAD_NAMES:
            raise ConfigError(f"vad must be one of {', '.join(VAD_NAMES)}, got {self.vad!r}")
        _number(self.threshold, "threshold", 0.01, 0.99)
        _number(self.min_silence, "min_silence", 0.05, 10.0)
        _number(self.padding, "padding", 0.0, 2.0)
        if self.padding > self.min_silence:
            raise ConfigError(f"padding ({self.padding:g} s) must not exceed min_silence ({self.min_silence:g} s)")
        _number(self.max_utterance, "max_utterance", 1.0, 600.0)
        _number(self.min_speech, "min_speech", 0.0, self.max_utterance)

    @classmethod
    def build(cls, **knobs: Any) -> StreamSettings:
        """Settings from keyword arguments (an unknown name is a ConfigError)."""
        unknown = sorted(set(knobs) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown stream setting(s): {', '.join(unknown)}")
        return cls(**knobs)
