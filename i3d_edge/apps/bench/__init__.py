"""``i3d-edge bench``: speed and memory of one model, dynamic depth against full-depth baselines.

For one model, on the same machine and thread settings, :func:`run_bench` measures

* (a) PyTorch eager at full depth (``Checkpoint.build_model()``, ``inference_mode``);
* (b) the monolithic full-depth ONNX graph in onnxruntime, with the runtime's SessionOptions;
* (c) the runtime with every module forced on (``full_depth=True``);
* (d) the runtime at the bundle's default threshold (its executed fraction is reported);
* (e) (b)-(d) again with the int8 variant;

and reports real-time factors (2 s / 10 s / 30 s utterances and a long file through
``Runtime.transcribe``), encoder time against a forced executed fraction (``threshold=0`` plus
``max_modules``), time per graph, peak RSS and cold start of fresh processes, and bundle sizes.

Timing method (:mod:`.timing`): the variants run in rounds (every variant once per round, in a
shuffled order, after one untimed warm-up round), so background load hits all of them alike;
times are medians and ratios are medians of the per-round ratios. Torch is imported only by the
eager baseline and by the export of a random-weight model. Rooms: :mod:`.measure` (the runs),
:mod:`.environment` (machine and versions), :mod:`.synthetic` (test audio), :mod:`.report`
(Markdown). The project's targets and their verdicts live in ``benchmarks/targets.py``.
"""

from __future__ import annotations

from .measure import SCHEMA, BenchConfig, run_bench
from .report import render_markdown
from .synthetic import speech_like

__all__ = ["SCHEMA", "BenchConfig", "render_markdown", "run_bench", "speech_like"]
