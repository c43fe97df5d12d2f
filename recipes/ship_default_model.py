"""Ship a trained checkpoint as the embedded default model.

    python recipes/ship_default_model.py /work/runs/default/best.pt --corpus /work/data/corpus

1. strips the optimiser state -> ``recipes/default_model/ckpt.pt`` (weights, config, training
   summary: what later sessions resume from and what the benchmarks run in PyTorch);
2. exports it, verified, with fp32 and int8 graphs -> ``i3d_edge/assets/default/``;
3. builds a word trigram LM from the training text only (the synthetic corpus's text pools: LJ
   Speech sentences minus every held-out and ljspeech-dev sentence, fortunes; its training
   transcripts, which hold the FSDD training speakers' digit words; the real corpora's training
   transcripts, three times), attaches it to the bundle, sets its beam (``--beam-size``, default
   256) and tunes its weight and word score at that beam on the dev sets (``dev``, ``dev_fsdd``,
   and the real corpora's held-out speakers);
4. evaluates held-out synthetic voices, the held-out FSDD speaker, ljspeech-dev, an4-test and the
   held-out speechocean762 speakers, each at full depth and at the default threshold, fp32 and
   int8, greedy and LM decoding
   -> ``recipes/default_model/eval.json``;
5. writes the scores into ``MODEL_CARD.md`` (between the ``<!-- scores -->`` markers) and copies
   the card into the bundle.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CARD_DIR = ROOT / "recipes" / "default_model"
BUNDLE = ROOT / "i3d_edge" / "assets" / "default"
SHARED = ROOT.parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--real-corpus", type=Path, default=Path("/work/data/real"),
                    help="recipes/make_real_corpus.py output: its train transcripts go into the LM, its dev "
                         "speakers tune the LM weights and are scored")
    ap.add_argument("--ljspeech", type=Path, default=SHARED / "data" / "ljspeech-dev")
    ap.add_argument("--an4-test", type=Path, default=SHARED / "data" / "an4-test")
    ap.add_argument("--edge-silence", type=float, default=None,
                    help="seconds of silence the runtime adds at each end of every segment (the feature "
                    "config's edge_silence; default: the checkpoint's)")
    ap.add_argument("--skip-export", action="store_true", help="only evaluate the bundle already in place")
    ap.add_argument("--skip-lm", action="store_true", help="keep the bundle's language model and weights")
    ap.add_argument("--beam-size", type=int, default=256,
                    help="beam of LM decoding, set before the weights are tuned (default 256)")
    ap.add_argument("--arpa", type=Path, default=None,
                    help="attach this ARPA model with --lm-weight/--word-score instead of building and tuning one "
                         "(keeps the shipped LM when only the acoustic model changes)")
    ap.add_argument("--no-tune", action="store_true",
                    help="build the training LM but attach it with --lm-weight/--word-score as given (weights "
                         "chosen on dev by benchmarks/lm_text.py) instead of tuning them here")
    ap.add_argument("--lm-weight", type=float, default=1.3)
    ap.add_argument("--real-text-repeats", type=int, default=REAL_TEXT_REPEATS,
                    help="times the real corpora's training transcripts weigh in the LM text (0: the synthetic "
                         "corpus's text only; benchmarks/REAL_SPEECH.md, session 11)")
    ap.add_argument("--word-score", type=float, default=1.0)
    args = ap.parse_args()
    if args.real_text_repeats < 0:
        ap.error(f"--real-text-repeats must be >= 0, got {args.real_text_repeats}")

    from i3d_edge.apps.evaluation import evaluate_corpus
    from i3d_edge.runtime import Runtime

    sets = {"test_voices": args.corpus / "test_voices", "test_fsdd": args.corpus / "test_fsdd",
            "ljspeech_dev": args.ljspeech, "an4_test": args.an4_test,
            "speechocean_dev": args.real_corpus / "dev_speechocean762-train"}
    missing = [f"{name} ({path})" for name, path in sets.items() if not (path / "transcripts.tsv").is_file()]
    if missing:  # a model is shipped on every set or not at all: check before anything is written
        raise SystemExit(f"ship_default_model: no transcripts.tsv for {', '.join(missing)}")
    CARD_DIR.mkdir(parents=True, exist_ok=True)
    if not args.skip_export:
        from i3d_edge.export import export_bundle
        from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        if args.edge_silence is not None:
            ckpt.feature_config = dataclasses.replace(ckpt.feature_config, edge_silence=args.edge_silence)
        state = ckpt.train_state
        ckpt.train_state = {k: v for k, v in state.items() if k != "optimizer"}
        save_checkpoint(CARD_DIR / "ckpt.pt", ckpt)
        t0 = time.time()
        export_bundle(CARD_DIR / "ckpt.pt", BUNDLE, quantize="int8", force=True)  # provenance: its SHA-256
        print(f"exported {BUNDLE} in {time.time() - t0:.1f} s")

    if args.arpa is not None:
        from i3d_edge.bundle.language_model import attach_language_model

        section = attach_language_model(BUNDLE, arpa=args.arpa, lm_weight=args.lm_weight,
                                        word_score=args.word_score, beam_size=args.beam_size)
        print(f"LM {args.arpa} attached as is: {section['ngram']}, lm_weight {args.lm_weight}, "
              f"word_score {args.word_score}, beam {args.beam_size}")
    elif args.no_tune:
        section = attach_training_lm(BUNDLE, args.corpus, args.real_corpus, args.real_text_repeats,
                                     lm_weight=args.lm_weight, word_score=args.word_score, beam_size=args.beam_size)
        print(f"LM attached untuned: {section['ngram']}, lm_weight {args.lm_weight}, word_score {args.word_score}")
    elif not args.skip_lm:
        attach_and_tune_lm(args.corpus, args.real_corpus, args.beam_size, args.real_text_repeats)

    results: dict[str, dict] = {}
    for precision, decoder in itertools.product(("fp32", "int8"), ("lm", "greedy")):
        for mode, kw in (("full_depth", {"full_depth": True}), ("default", {})):
            rt = Runtime(BUNDLE, precision=precision, threads=2, decoder=decoder, **kw)
            for name, path in sets.items():
                report = evaluate_corpus(rt, path).to_dict()
                results[f"{name}/{precision}/{mode}/{decoder}"] = report
                print(f"{name:13s} {precision} {mode:10s} {decoder:6s} WER {100 * report['wer']:6.2f}%  "
                      f"CER {100 * report['cer']:6.2f}%  acc {100 * report['sentence_accuracy']:5.1f}%  "
                      f"modules {report['modules_executed']:.1f}/{report['modules_total']}  RTF {report['rtf']:.4f}")
    (CARD_DIR / "eval.json").write_text(json.dumps(results, indent=1))
    write_scores(results)
    shutil.copy(CARD_DIR / "MODEL_CARD.md", BUNDLE / "MODEL_CARD.md")


def write_scores(results: dict[str, dict]) -> None:
    rows = ["| set | precision | depth | decoder | WER % | CER % | utterance acc. % | modules executed | RTF |",
            "|---|---|---|---|---|---|---|---|---|"]
    for key, r in sorted(results.items(), key=lambda kv: kv[0].split("/")[::-1]):
        name, precision, mode, decoder = key.split("/")
        rows.append(f"| {name} | {precision} | {mode.replace('_', ' ')} | {decoder} | {100 * r['wer']:.2f} "
                    f"| {100 * r['cer']:.2f} | {100 * r['sentence_accuracy']:.1f} "
                    f"| {r['modules_executed']:.1f}/{r['modules_total']} | {r['rtf']:.4f} |")
    card = CARD_DIR / "MODEL_CARD.md"
    text = card.read_text()
    start, end = "<!-- scores -->", "<!-- /scores -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    card.write_text(f"{head}{start}\n" + "\n".join(rows) + f"\n{end}{tail}")


REAL_TEXT_REPEATS = 3  # the real corpora's transcripts weigh this many times in the n-gram counts

# Issue 31's ship rule: better than the shipped model on every real set, at most this much relative
# WER worse on the synthetic ones. benchmarks/lm_text.py (``--baseline``) applies it to the dev sets to
# choose a candidate and its LM weights, and reports where the choice breaks it on the test sets; this
# script ships whatever it is given.
SYNTHETIC_SLACK = 0.10
SYNTHETIC_SETS = frozenset({"synth_dev", "synth_voices", "test_voices"})


def ship_rule_failures(wer: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """The sets of ``baseline`` on which ``wer`` breaks the ship rule (empty: it passes); a set
    missing from ``wer`` fails. Real sets must be strictly better, synthetic ones within
    ``SYNTHETIC_SLACK``."""
    failures = []
    for name, base in baseline.items():
        got = wer.get(name)
        synthetic = name in SYNTHETIC_SETS
        if got is None or (got > base * (1 + SYNTHETIC_SLACK) if synthetic else got >= base):
            failures.append(name)
    return failures


def lm_sentences(corpus: Path, real: Path, real_repeats: int = REAL_TEXT_REPEATS) -> Iterator[str]:
    """Training text only: the synthetic corpus's LJ Speech and fortunes pools (never its held-out
    ``dev``/``test`` sentences), its train transcripts, and the real corpora's training transcripts
    (``real_repeats`` times, default ``REAL_TEXT_REPEATS``: read speech of the kind people try; spelled
    letters and digits)."""
    pools = json.loads(gzip.decompress((corpus / "text_pools.json.gz").read_bytes()))["pools"]
    for name in ("ljspeech", "fortunes"):
        for _raw, text in pools[name]:
            yield text
    for line in (corpus / "train" / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        yield line.partition("\t")[2]
    real_lines = (real / "train" / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    for _ in range(real_repeats):
        for line in real_lines:
            yield line.partition("\t")[2]


def attach_training_lm(bundle: Path, corpus: Path, real: Path, real_repeats: int = REAL_TEXT_REPEATS,
                       **settings: float) -> dict:
    """Attach the default model's LM to ``bundle``: a trigram of :func:`lm_sentences` (pruned, 20,000
    words); ``settings``: the decoder's lm_weight, word_score, beam_size. Returns its decoder section."""
    from i3d_edge.bundle.language_model import attach_language_model
    from i3d_edge.tokens import normalize_text

    text = (normalize_text(t) for t in lm_sentences(corpus, real, real_repeats))
    return attach_language_model(bundle, sentences=text, order=3, prune=(2, 2), max_vocab=20000, **settings)


def attach_and_tune_lm(corpus: Path, real: Path, beam_size: int, real_repeats: int = REAL_TEXT_REPEATS) -> None:
    """Attach a trigram LM to BUNDLE, then grid-search lm_weight x word_score on the dev sets
    (decoding with ``beam_size``, which becomes the bundle's default too): the minimum of the
    summed WER of the synthetic dev, the FSDD dev speaker and the held-out real speakers."""
    from i3d_edge.audio import load_audio
    from i3d_edge.bundle.language_model import set_decoder_settings
    from i3d_edge.corpus import read_corpus
    from i3d_edge.features import batch_features, extract_features
    from i3d_edge.runtime import Runtime
    from i3d_edge.scoring import score

    t0 = time.time()
    section = attach_training_lm(BUNDLE, corpus, real, real_repeats)
    print(f"LM attached in {time.time() - t0:.1f} s: {section['ngram']}")
    rt = Runtime(BUNDLE, threads=2, decoder="greedy")
    fc = rt.feature_config
    dev: dict[str, list[tuple[np.ndarray, int, str]]] = {}
    dev_dirs = {"dev": corpus / "dev", "dev_fsdd": corpus / "dev_fsdd",
                "speechocean_dev": real / "dev_speechocean762-train", "an4_dev": real / "dev_an4-train"}
    for name, folder in dev_dirs.items():
        items = []
        for _utt, path, text in read_corpus(folder):
            feats = extract_features(load_audio(path, target_rate=fc.sample_rate), fc)  # as the runtime does
            out = rt.forward(*batch_features([feats]))
            items.append((out.log_probs[0], int(out.lens[0]), text))
        dev[name] = items

    def wer(items: list[tuple[np.ndarray, int, str]], weight: float, bonus: float) -> float:
        lm = rt.with_options(decoder="lm", lm_weight=weight, word_score=bonus, beam_size=beam_size)
        hyps = [lm.decode(lp, n)[0] for lp, n, _ in items]
        return score([t for _, _, t in items], hyps).wer

    grid = {}
    for weight, bonus in itertools.product((0.8, 1.0, 1.3, 1.6, 2.0), (-1.0, 0.0, 1.0, 2.0)):
        grid[(weight, bonus)] = [wer(items, weight, bonus) for items in dev.values()]
        print(f"  lm_weight {weight:.1f} word_score {bonus:+.1f}: WER " + ", ".join(
            f"{n} {100 * v:.1f}%" for n, v in zip(dev, grid[(weight, bonus)], strict=True)), flush=True)
    (weight, bonus), best = min(grid.items(), key=lambda kv: sum(kv[1]))
    print(f"best: lm_weight {weight} word_score {bonus} (" + ", ".join(
        f"{n} {100 * v:.1f}%" for n, v in zip(dev, best, strict=True)) + ")")
    set_decoder_settings(BUNDLE, lm_weight=weight, word_score=bonus, beam_size=beam_size)
    (CARD_DIR / "lm_tuning.json").write_text(json.dumps(
        {"grid": [{"lm_weight": w, "word_score": b, **{f"wer_{n}": x for n, x in zip(dev, v, strict=True)}}
                  for (w, b), v in grid.items()], "chosen": {"lm_weight": weight, "word_score": bonus},
         "beam_size": beam_size, "ngram": section["ngram"]},
        indent=1))


if __name__ == "__main__":
    main()
