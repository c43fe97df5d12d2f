"""Runtime knobs, validated in one place."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["DECODERS", "DEFAULT_PROVIDERS", "PRECISIONS", "RuntimeOptions"]

PRECISIONS = ("fp32", "int8")
DECODERS = ("auto", "greedy", "lm")  # auto: the bundle's LM when it has one and flashlight-text is installed
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RuntimeOptions:
    """How a :class:`~i3d_edge.runtime.Runtime` executes a bundle."""

    threshold: float | None = None  # run a module when its gate probability > this; None: the bundle's
    max_modules: int | None = None  # compute budget: at most this many modules per utterance (segment)
    full_depth: bool = False  # run every module, ignoring the gates
    threads: int | None = None  # intra-op threads per session; None: onnxruntime's default (all cores)
    providers: tuple[str, ...] = DEFAULT_PROVIDERS  # onnxruntime execution providers, in order
    precision: str | None = None  # graph variant (fp32 / int8); None: the bundle's default variant
    lazy: bool = False  # create a module's session on first use instead of at load
    segment_seconds: float = 30.0  # longer audio is cut into segments of at most this length
    batch_size: int = 8  # max segments per forward batch in transcribe / transcribe_batch (fewer when long)
    decoder: str = "auto"  # auto | greedy | lm (word n-gram beam search, needs an LM in the bundle)
    lm_weight: float | None = None  # LM decoding: weight of the LM score; None: the bundle's
    word_score: float | None = None  # LM decoding: bonus per word; None: the bundle's
    beam_size: int | None = None  # LM decoding: hypotheses kept per frame; None: the bundle's

    def __post_init__(self) -> None:
        if self.threshold is not None:
            if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
                raise ConfigError(f"threshold must be a number in [0, 1), got {self.threshold!r}")
            if not 0.0 <= float(self.threshold) < 1.0:
                raise ConfigError(f"threshold must be in [0, 1), got {self.threshold}")
            object.__setattr__(self, "threshold", float(self.threshold))
        if self.max_modules is not None and (not _is_int(self.max_modules) or self.max_modules < 0):
            raise ConfigError(f"max_modules must be an integer >= 0, got {self.max_modules!r}")
        if not isinstance(self.full_depth, bool):
            raise ConfigError(f"full_depth must be True or False, got {self.full_depth!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise ConfigError(f"threads must be an integer >= 1, got {self.threads!r}")
        providers = self.providers
        if isinstance(providers, str) or not isinstance(providers, Sequence) or not providers \
                or not all(isinstance(p, str) for p in providers):
            raise ConfigError(f"providers must be a non-empty list of provider names, got {providers!r}")
        object.__setattr__(self, "providers", tuple(providers))
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.lazy, bool):
            raise ConfigError(f"lazy must be True or False, got {self.lazy!r}")
        if isinstance(self.segment_seconds, bool) or not isinstance(self.segment_seconds, (int, float)) \
                or not 5.0 <= self.segment_seconds <= 600.0:
            raise ConfigError(f"segment_seconds must be between 5 and 600, got {self.segment_seconds!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        for name in ("lm_weight", "word_score"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not -1e3 <= value <= 1e3):
                raise ConfigError(f"{name} must be a number between -1000 and 1000, got {value!r}")
        if self.lm_weight is not None and self.lm_weight < 0:
            raise ConfigError(f"lm_weight must be >= 0, got {self.lm_weight}")
        if self.beam_size is not None and (not _is_int(self.beam_size) or not 1 <= self.beam_size <= 4096):
            raise ConfigError(f"beam_size must be an integer between 1 and 4096, got {self.beam_size!r}")

    def replace(self, **changes: Any) -> RuntimeOptions:
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown runtime option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)
