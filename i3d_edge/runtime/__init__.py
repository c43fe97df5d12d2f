"""The light runtime: numpy + onnxruntime only (torch is never imported here).

``Runtime`` evaluates the gate predictor(s) first and runs only the selected module sessions:

* **Sessions.** One ``SessionOptions`` policy for every graph (:func:`sessions.session_options`):
  ``threads`` intra-op threads, one inter-op thread, sequential execution, all graph
  optimisations, no memory pattern (time length varies per input), one CPU arena shared by
  all sessions of the process, and idle worker threads that sleep instead of spinning (each
  session owns a pool, and a spinning one would steal cores from the next module). Sessions
  are created once, after the file's SHA-256 is checked, and their input/output names are
  checked against ``GRAPH_IO``; with ``lazy=True`` a module's session is created on first use.
* **Batches.** In a batch whose rows choose different modules, a module runs only on the rows
  that need it (gathered and trimmed to their longest valid length, then scattered back); a
  module no row needs is never run. ``session_runs`` counts runs per graph.
* **Long audio** is streamed and cut at low-energy points into segments of at most
  ``segment_seconds``; segments of all inputs share padded batches of up to ``batch_size``,
  fewer when batch rows x encoder frames^2 (attention memory) would exceed one maximum-length
  segment's, or, for a waveform frontend (conv activations grow with the samples), rows x frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DEFAULT_BUNDLE", "ForwardOutput", "ItemResult", "Runtime", "RuntimeOptions", "Segment", "TokenTiming",
           "Transcript", "WordTiming", "check_bundle", "check_language_model_file"]

if TYPE_CHECKING:
    from .checks import check_bundle, check_language_model_file
    from .options import RuntimeOptions
    from .results import ForwardOutput, Segment, TokenTiming, Transcript, WordTiming
    from .runtime import DEFAULT_BUNDLE, ItemResult, Runtime

_HOME = {"RuntimeOptions": "options", "ForwardOutput": "results", "Segment": "results", "TokenTiming": "results",
         "Transcript": "results", "WordTiming": "results", "DEFAULT_BUNDLE": "runtime", "ItemResult": "runtime",
         "Runtime": "runtime", "check_bundle": "checks", "check_language_model_file": "checks"}


def __getattr__(name: str) -> Any:
    # Lazy: ``i3d_edge.runtime.options`` (the CLI's option declarations) loads without onnxruntime.
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
