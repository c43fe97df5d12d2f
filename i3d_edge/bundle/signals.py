"""SIGTERM and SIGHUP handled like Ctrl-C while a writer holds temporary files (no torch)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["sigterm_as_interrupt"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (and SIGHUP) raises KeyboardInterrupt in the main thread, so the writer's
    cleanup (``except BaseException``) runs as it does for Ctrl-C; the previous handler is restored
    after. In other threads (where Python cannot install handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hangup = getattr(signal, "SIGHUP", None)  # a closed terminal: cleaned up like SIGTERM
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_hup = signal.signal(hangup, _interrupt) if hangup is not None else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if hangup is not None:
            signal.signal(hangup, previous_hup)
