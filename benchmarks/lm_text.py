"""The LM's text, measured: for each share of the real corpora's transcripts in the shipping recipe's
LM text, the LM weights are tuned on the dev sets only, then every set is scored with the chosen
weights (benchmarks/REAL_SPEECH.md, sessions 11-12).

    python benchmarks/lm_text.py --checkpoint /work/runs/v07f/best.pt --repeats 0,1,3 \\
        --edge-silence 0.15 --corpus /work/data/corpus --json /tmp/lm_text.json

The checkpoint is exported once (fp32, ``--work``); each set goes through the encoder once (default
threshold, with ``--edge-silence`` as the runtime's knob adds it) and its log-probabilities are decoded
by every LM and weight pair, so the numbers are those of ``i3d-edge eval`` on a bundle shipped with
that LM and those weights (``recipes/ship_default_model.py --real-text-repeats N``). Weights: lm_weight
x word_score over the ship script's grid, chosen by the minimum summed WER of the dev sets (synthetic
dev, FSDD dev speaker, held-out speechocean762 and AN4 speakers), as the ship script chooses them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "recipes"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


DEV_SETS = ("synth_dev", "fsdd_dev", "speechocean_dev", "an4_dev")
WEIGHTS = (0.8, 1.0, 1.3, 1.6, 2.0)
WORD_SCORES = (-1.0, 0.0, 1.0, 2.0)

Item = tuple[np.ndarray, int, str]  # log-probs (T, V), frames, reference


def encode(runtime, folder: Path, limit: int | None = None) -> tuple[list[Item], float]:
    """One encoder pass per utterance of ``folder`` (its first ``limit``): log-probs, length and
    reference text, and the mean number of modules executed."""
    from i3d_edge.audio import load_audio
    from i3d_edge.corpus import read_corpus
    from i3d_edge.features import batch_features, extract_features

    fc = runtime.feature_config  # with the edge_silence knob
    items, executed = [], []
    for _utt, path, text in read_corpus(folder)[:limit]:
        out = runtime.forward(*batch_features([extract_features(load_audio(path, target_rate=fc.sample_rate), fc)]))
        items.append((out.log_probs[0], int(out.lens[0]), text))
        executed.append(float(np.asarray(out.gates[0]).sum()))
    return items, float(np.mean(executed))


def scores(runtime, items: list[Item], **decoder) -> tuple[float, float]:
    """WER and CER of ``items`` decoded by ``runtime`` with these decoder settings."""
    from i3d_edge.scoring import score

    rt = runtime.with_options(**decoder)
    s = score([t for _, _, t in items], [rt.decode(lp, n)[0] for lp, n, _ in items])
    return s.wer, s.cer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--repeats", default="0,1,3", help="comma list of --real-text-repeats values")
    ap.add_argument("--edge-silence", type=float, default=None, help="the runtime knob (default: the checkpoint's)")
    ap.add_argument("--interpolate", default=None,
                    help="BASE_CKPT:ALPHA: score ALPHA * checkpoint + (1 - ALPHA) * base (as edge_silence.py)")
    ap.add_argument("--sets", default="an4_test,ljspeech_dev,speechocean_dev,fsdd_test,synth_voices",
                    help="sets scored with the chosen weights (those of benchmarks/peers.py)")
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--real-corpus", type=Path, default=Path("/work/data/real"))
    ap.add_argument("--beam-size", type=int, default=256)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lm_text"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N utterances of each set (a smoke run)")
    args = ap.parse_args()

    from edge_silence import build_bundle, set_folders
    from ship_default_model import attach_training_lm

    from i3d_edge.runtime import Runtime

    paths = set_folders(args.real_corpus, args.corpus)
    bundle = build_bundle(args.checkpoint, args.work, args.interpolate, args.corpus, args.real_corpus, 1.0, 0.0)
    runtime = Runtime(bundle, threads=2, decoder="greedy", edge_silence=args.edge_silence)
    encoded: dict[str, tuple[list[Item], float]] = {}
    for name in dict.fromkeys([*DEV_SETS, *args.sets.split(",")]):
        t0 = time.time()
        encoded[name] = encode(runtime, paths[name], args.limit)
        print(f"{name}: {len(encoded[name][0])} utterances encoded in {time.time() - t0:.0f} s, "
              f"{encoded[name][1]:.1f} modules", flush=True)
    report: dict = {"checkpoint": str(args.checkpoint), "interpolate": args.interpolate,
                    "edge_silence": runtime.feature_config.edge_silence,
                    "modules": {n: m for n, (_, m) in encoded.items()}, "texts": []}
    for repeats in (int(r) for r in args.repeats.split(",")):
        section = attach_training_lm(bundle, args.corpus, args.real_corpus, repeats, lm_weight=1.0,
                                     word_score=0.0, beam_size=args.beam_size)
        lm_runtime = Runtime(bundle, threads=2, decoder="greedy", edge_silence=args.edge_silence)
        grid = {}
        for weight, bonus in itertools.product(WEIGHTS, WORD_SCORES):
            grid[(weight, bonus)] = {n: scores(lm_runtime, encoded[n][0], decoder="lm", lm_weight=weight,
                                               word_score=bonus, beam_size=args.beam_size)[0] for n in DEV_SETS}
        (weight, bonus), dev = min(grid.items(), key=lambda kv: sum(kv[1].values()))
        row = {"real_text_repeats": repeats, "ngram": section["ngram"], "lm_weight": weight, "word_score": bonus,
               "dev_wer": dev, "dev_sum": sum(dev.values()), "grid": [
                   {"lm_weight": w, "word_score": b, **v} for (w, b), v in grid.items()], "sets": {}}
        for name in args.sets.split(","):
            wer, cer = scores(lm_runtime, encoded[name][0], decoder="lm", lm_weight=weight, word_score=bonus,
                              beam_size=args.beam_size)
            gwer, gcer = scores(lm_runtime, encoded[name][0], decoder="greedy")
            row["sets"][name] = {"wer": wer, "cer": cer, "greedy_wer": gwer, "greedy_cer": gcer}
        report["texts"].append(row)
        print(f"real text x{repeats}: lm_weight {weight}, word_score {bonus:+}, dev sum {100 * row['dev_sum']:.1f} ("
              + ", ".join(f"{n} {100 * v:.1f}" for n, v in dev.items()) + "); "
              + ", ".join(f"{n} {100 * r['wer']:.1f}/{100 * r['cer']:.1f}" for n, r in row["sets"].items()),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
