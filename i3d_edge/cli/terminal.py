"""Text that reaches the terminal or a line-based output: control characters escaped.

A file name, a bundle path or a token is chosen by whoever made the file: ``x\nerror: injected.wav``
would forge a second ``error:`` line, ``ESC]0;...BEL`` would retitle the terminal. Every message the
command line prints passes through :func:`escape_controls`, which writes such characters as Python
escapes (``\\n``, ``\\x1b``, ``\\u202e``), so one message stays one line of plain text.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls"]

# C0 and C1 controls and DEL, the Unicode line and paragraph separators, and the bidirectional
# overrides and isolates (they reorder what the terminal shows).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return _CONTROLS.sub(_escape, text)
