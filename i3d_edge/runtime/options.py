"""Runtime knobs: defaults, help and validation in one place (the CLI reads them from here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from ..config import check_beam_size, check_lm_weight, check_threshold, check_word_score, setting
from ..errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11; annotations only

__all__ = ["DECODERS", "DEFAULT_PROVIDERS", "PRECISIONS", "RuntimeChanges", "RuntimeKnobs", "RuntimeOptions"]

PRECISIONS = ("fp32", "int8")
DECODERS = ("auto", "greedy", "lm")  # auto: the bundle's LM when it has one and flashlight-text is installed
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


class RuntimeChanges(TypedDict, total=False):
    """The knobs a loaded Runtime can change (``Runtime.with_options``): RuntimeOptions fields, typed for
    IDEs and mypy. Defaults and help are the fields' (a test keeps the names alike)."""

    threshold: float | None
    max_modules: int | None
    full_depth: bool
    segment_seconds: float
    batch_size: int
    decoder: str
    lm_weight: float | None
    word_score: float | None
    beam_size: int | None
    edge_silence: float | None


class RuntimeKnobs(RuntimeChanges, total=False):
    """Every knob of ``Runtime(...)``: those it can change later plus the ones fixed at load."""

    threads: int | None
    providers: Sequence[str] | None  # None: DEFAULT_PROVIDERS
    precision: str | None
    lazy: bool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RuntimeOptions:
    """How a :class:`~i3d_edge.runtime.Runtime` executes a bundle."""

    threshold: float | None = setting(None, "Gate threshold in [0, 1): run a module when its gate probability "
                                          "is above it (default: the bundle's).")
    max_modules: int | None = setting(None, "Run at most K modules per utterance (segment), the most probable "
                                          "ones (default: no limit).")
    full_depth: bool = setting(False, "Run every module, ignoring the gates.")
    threads: int | None = setting(None, "onnxruntime intra-op threads per session (default: onnxruntime's "
                                      "choice, one per physical core).")
    providers: tuple[str, ...] = setting(DEFAULT_PROVIDERS, "onnxruntime execution providers, in order.")
    precision: str | None = setting(None, "Graph variant, fp32 or int8 (default: the bundle's).")
    lazy: bool = setting(False, "Create a module's session on first use instead of at load.")
    segment_seconds: float = setting(30.0, "Longer audio is cut into segments of at most this many seconds.")
    batch_size: int = setting(8, "Audio segments per forward batch (fewer when they are long).")
    decoder: str = setting("auto", "auto: the bundle's language model when it has one (and flashlight-text is "
                                 "installed), else greedy; greedy; lm.")
    lm_weight: float | None = setting(None, "Weight of the language model in LM decoding (default: the bundle's).")
    word_score: float | None = setting(None, "Bonus per word in LM decoding (default: the bundle's).")
    beam_size: int | None = setting(None, "Beam size of LM decoding (default: the bundle's).")
    edge_silence: float | None = setting(None, "Seconds of digital silence put before and after every segment "
                                               "before its features, 0-1 (default: the bundle's; token times "
                                               "exclude it).")

    def __post_init__(self) -> None:
        if self.threshold is not None:
            object.__setattr__(self, "threshold", check_threshold(self.threshold))
        if self.max_modules is not None and (not _is_int(self.max_modules) or self.max_modules < 0):
            raise ConfigError(f"max_modules must be an integer >= 0, got {self.max_modules!r}")
        if not isinstance(self.full_depth, bool):
            raise ConfigError(f"full_depth must be True or False, got {self.full_depth!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise ConfigError(f"threads must be an integer >= 1, got {self.threads!r}")
        providers = (self.providers,) if isinstance(self.providers, str) else self.providers
        if not isinstance(providers, Sequence) or not providers or not all(isinstance(p, str) for p in providers):
            raise ConfigError(f"providers must be a non-empty list of provider names, got {self.providers!r}")
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
        if self.lm_weight is not None:
            object.__setattr__(self, "lm_weight", check_lm_weight(self.lm_weight))
        if self.word_score is not None:
            object.__setattr__(self, "word_score", check_word_score(self.word_score))
        if self.beam_size is not None:
            check_beam_size(self.beam_size)
        if self.edge_silence is not None:
            if isinstance(self.edge_silence, bool) or not isinstance(self.edge_silence, (int, float)) \
                    or not 0.0 <= self.edge_silence <= 1.0:
                raise ConfigError(f"edge_silence must be 0-1 seconds, got {self.edge_silence!r}")
            object.__setattr__(self, "edge_silence", float(self.edge_silence))

    @classmethod
    def build(cls, **knobs: Unpack[RuntimeKnobs]) -> RuntimeOptions:
        """Options from keyword arguments (unknown names are a ConfigError; ``providers=None`` is the
        default)."""
        if knobs.get("providers", ()) is None:
            del knobs["providers"]
        return cls().replace(**knobs)

    def replace(self, **changes: Unpack[RuntimeKnobs]) -> RuntimeOptions:
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown runtime option(s): {', '.join(unknown)}")
        values: dict[str, Any] = dict(changes)  # __post_init__ checks and normalises (providers: a tuple)
        return dataclasses.replace(self, **values)

