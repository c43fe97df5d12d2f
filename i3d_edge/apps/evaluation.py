"""Corpus evaluation with the runtime (torch-free): WER, CER, executed modules and RTF.

The corpus layout is :mod:`i3d_edge.corpus`'s.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..corpus import read_corpus
from ..scoring import score

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["EvalReport", "evaluate_corpus"]

@dataclass(frozen=True)
class EvalReport:
    corpus: str
    utterances: int
    wer: float  # word error rate after normalisation
    cer: float  # character error rate
    sentence_accuracy: float  # exact-match rate (digit accuracy for one-word corpora)
    modules_executed: float  # mean executed modules per utterance
    modules_total: int
    executed_fraction: float
    audio_seconds: float
    processing_seconds: float
    rtf: float  # processing time / audio time
    decoder: str = "greedy"  # greedy | lm (word n-gram beam search)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_corpus(runtime: Runtime, corpus: Path, batch_size: int | None = None,
                    limit: int | None = None) -> EvalReport:
    """Transcribe the first ``limit`` utterances of ``corpus`` (``batch_size`` files per call,
    default the runtime's) and score them."""
    items = read_corpus(corpus)[:limit]
    batch_size = batch_size or runtime.options.batch_size
    refs, hyps, executed = [], [], []
    audio_s = 0.0
    start = time.perf_counter()
    for k in range(0, len(items), batch_size):
        chunk = items[k: k + batch_size]
        for (_, _, text), result in zip(chunk, runtime.transcribe_batch([p for _, p, _ in chunk]), strict=True):
            refs.append(text)
            hyps.append(result.text)
            executed.append(result.modules_executed)
            audio_s += result.duration
    elapsed = time.perf_counter() - start
    s = score(refs, hyps)
    total = runtime.modules_total
    mean_exec = sum(executed) / len(executed)
    return EvalReport(str(corpus), len(items), s.wer, s.cer, s.sentence_accuracy, mean_exec, total,
                      mean_exec / total, audio_s, elapsed, elapsed / max(audio_s, 1e-9), runtime.decoder)
