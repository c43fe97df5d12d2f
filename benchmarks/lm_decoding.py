"""Where the time of `transcribe` goes with the word-LM beam search, on one long file (issue #16).

    python benchmarks/lm_decoding.py --corpus /work/data/corpus [--seconds 600] [--repeats 3]
                                     [--model DIR] [--threads N] [--wer dev,dev_fsdd]

Builds (once) a long file by concatenating the corpus's ``dev`` utterances with 0.2 s of silence
between them (numpy + soundfile), then transcribes it ``--repeats`` times with the bundle's LM
decoder and with the greedy decoder, each time with a fresh Runtime (as the CLI does: the LM is
loaded by the first decode and that counts as decoding). Reports medians of

* wall clock: the transcript's ``decode`` and ``total`` timings and decode's share;
* CPU time of the process (robust on a loaded machine): LM run, greedy run, and their difference,
  the CPU cost of the beam search.

With ``--wer``, also the WER of the LM decoder on those corpus splits (``i3d-edge eval``'s numbers).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from i3d_edge.apps.evaluation import evaluate_corpus
from i3d_edge.corpus import read_corpus
from i3d_edge.runtime import Runtime


def build_long_file(corpus: Path, seconds: float, out: Path) -> Path:
    if out.is_file() and sf.info(str(out)).duration >= seconds - 0.01:
        return out
    items = read_corpus(corpus / "dev")
    gap = np.zeros(3200, np.float32)  # 0.2 s at 16 kHz
    parts, total, i = [], 0, 0
    while total < seconds * 16000:
        audio, rate = sf.read(items[i % len(items)][1], dtype="float32")
        if rate != 16000 or audio.ndim != 1:
            raise SystemExit(f"{items[i % len(items)][1]}: expected 16 kHz mono")
        parts += [audio, gap]
        total += audio.shape[0] + gap.shape[0]
        i += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, np.concatenate(parts)[: int(seconds * 16000)], 16000, subtype="PCM_16")
    return out


def run_once(model: str | None, path: Path, decoder: str, threads: int | None) -> dict[str, float]:
    rt = Runtime(model, decoder=decoder, threads=threads)
    cpu = time.process_time()
    result = rt.transcribe(path)
    cpu = time.process_time() - cpu
    return {"decode": result.timings["decode"], "total": result.timings["total"], "cpu": cpu,
            "words": len(result.text.split())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="bundle (default: the embedded model)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--long-file", type=Path, default=Path("/tmp/i3d-edge-lm-bench/long.wav"))
    parser.add_argument("--wer", default="", help="comma-separated corpus splits to score with the LM decoder")
    args = parser.parse_args()

    path = build_long_file(args.corpus, args.seconds, args.long_file)
    runs: dict[str, list[dict[str, float]]] = {"lm": [], "greedy": []}
    for _ in range(args.repeats):  # interleaved, so that load changes hit both alike
        for decoder in runs:
            runs[decoder].append(run_once(args.model, path, decoder, args.threads))
    med = {d: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for d, rs in runs.items()}
    lm, greedy = med["lm"], med["greedy"]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, python "
          f"{platform.python_version()}; file: {args.seconds:.0f} s; repeats: {args.repeats} (medians)")
    print("| decoder | decode (wall s) | total (wall s) | decode share | process CPU s | words |")
    print("|---|---|---|---|---|---|")
    for name, m in (("lm", lm), ("greedy", greedy)):
        print(f"| {name} | {m['decode']:.2f} | {m['total']:.2f} | {100 * m['decode'] / m['total']:.0f}% | "
              f"{m['cpu']:.2f} | {m['words']:.0f} |")
    print(f"beam search CPU cost: {lm['cpu'] - greedy['cpu']:.2f} s of {lm['cpu']:.2f} s "
          f"({100 * (lm['cpu'] - greedy['cpu']) / lm['cpu']:.0f}%)")
    for split in filter(None, args.wer.split(",")):
        report = evaluate_corpus(Runtime(args.model, decoder="lm", threads=args.threads), args.corpus / split)
        print(f"{split}: WER {100 * report.wer:.2f}%  CER {100 * report.cer:.2f}%  ({report.utterances} utterances)")


if __name__ == "__main__":
    main()
