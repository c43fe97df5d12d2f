"""Token table and text normalisation shared by training, export, runtime and evaluation."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["BLANK", "DEFAULT_TOKENS", "SEPARATOR", "TokenTable", "normalize_text"]

BLANK = "<blank>"
SEPARATOR = " "  # the token between words
# Character vocabulary: CTC blank (index 0), word separator, apostrophe, a-z.
DEFAULT_TOKENS: tuple[str, ...] = (BLANK, SEPARATOR, "'", *"abcdefghijklmnopqrstuvwxyz")

_DROP = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept), whitespace collapsed.

    Hyphens and dashes become spaces so that ``well-known`` scores as two words.
    """
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    text = _DROP.sub(" ", text.replace("\t", " "))
    text = " ".join(w.strip("'") if w.strip("'") else "" for w in text.split())
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class TokenTable:
    """An ordered list of output symbols; index 0 is the CTC blank."""

    tokens: tuple[str, ...] = DEFAULT_TOKENS

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(self.tokens))
        if len(self.tokens) < 2 or self.tokens[0] != BLANK:
            raise ConfigError(f"token table: index 0 must be {BLANK!r} and at least one token must follow")
        if len(set(self.tokens)) != len(self.tokens):
            raise ConfigError("token table: duplicate tokens")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of normalised ``text``; characters outside the table are dropped."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        # an upper-case vocabulary (many imported models) spells the normalised text in capitals
        chars = (c if c in index else c.upper() for c in normalize_text(text))
        kept = " ".join("".join(c for c in chars if c in index).split())
        return [index[c] for c in kept]

    def decode(self, ids: Iterable[int]) -> str:
        """Concatenate token strings (ids must already be CTC-collapsed, blanks removed)."""
        return "".join(self.tokens[i] for i in ids if i != 0).strip()

    @classmethod
    def from_list(cls, tokens: Sequence[str]) -> TokenTable:
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
            raise ConfigError("token table: expected a list of strings")
        return cls(tuple(tokens))
