"""Ship a trained checkpoint as the embedded default model.

    python recipes/ship_default_model.py /work/runs/default/best.pt --corpus /work/data/corpus

1. strips the optimiser state -> ``recipes/default_model/ckpt.pt`` (weights, config, training
   summary: what later sessions resume from and what the benchmarks run in PyTorch);
2. exports it, verified, with fp32 and int8 graphs -> ``i3d_edge/assets/default/``;
3. evaluates held-out synthetic voices, the held-out FSDD speaker and ljspeech-dev, each at full
   depth and at the default threshold, fp32 and int8 -> ``recipes/default_model/eval.json``;
4. writes the scores into ``MODEL_CARD.md`` (between the ``<!-- scores -->`` markers) and copies
   the card into the bundle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD_DIR = ROOT / "recipes" / "default_model"
BUNDLE = ROOT / "i3d_edge" / "assets" / "default"
SHARED = ROOT.parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--ljspeech", type=Path, default=SHARED / "data" / "ljspeech-dev")
    ap.add_argument("--skip-export", action="store_true", help="only evaluate the bundle already in place")
    args = ap.parse_args()

    from i3d_edge.evaluation import evaluate_corpus
    from i3d_edge.runtime import Runtime

    CARD_DIR.mkdir(parents=True, exist_ok=True)
    if not args.skip_export:
        from i3d_edge.export import export_bundle
        from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        state = ckpt.train_state
        ckpt.train_state = {k: v for k, v in state.items() if k != "optimizer"}
        save_checkpoint(CARD_DIR / "ckpt.pt", ckpt)
        t0 = time.time()
        export_bundle(ckpt, BUNDLE, quantize="int8", force=True)
        print(f"exported {BUNDLE} in {time.time() - t0:.1f} s")

    sets = {"test_voices": args.corpus / "test_voices", "test_fsdd": args.corpus / "test_fsdd",
            "ljspeech_dev": args.ljspeech}
    results: dict[str, dict] = {}
    for precision in ("fp32", "int8"):
        for mode, kw in (("full_depth", {"full_depth": True}), ("default", {})):
            rt = Runtime(BUNDLE, precision=precision, threads=2, **kw)
            for name, path in sets.items():
                if not (path / "transcripts.tsv").is_file():
                    print(f"skip {name}: {path} has no transcripts.tsv")
                    continue
                report = evaluate_corpus(rt, path).to_dict()
                results[f"{name}/{precision}/{mode}"] = report
                print(f"{name:13s} {precision} {mode:10s} WER {100 * report['wer']:6.2f}%  "
                      f"CER {100 * report['cer']:6.2f}%  acc {100 * report['sentence_accuracy']:5.1f}%  "
                      f"modules {report['modules_executed']:.1f}/{report['modules_total']}  RTF {report['rtf']:.4f}")
    (CARD_DIR / "eval.json").write_text(json.dumps(results, indent=1))
    write_scores(results)
    shutil.copy(CARD_DIR / "MODEL_CARD.md", BUNDLE / "MODEL_CARD.md")


def write_scores(results: dict[str, dict]) -> None:
    rows = ["| set | precision | depth | WER % | CER % | utterance acc. % | modules executed | RTF |",
            "|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        name, precision, mode = key.split("/")
        rows.append(f"| {name} | {precision} | {mode.replace('_', ' ')} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} "
                    f"| {100 * r['sentence_accuracy']:.1f} | {r['modules_executed']:.1f}/{r['modules_total']} "
                    f"| {r['rtf']:.4f} |")
    card = CARD_DIR / "MODEL_CARD.md"
    text = card.read_text()
    start, end = "<!-- scores -->", "<!-- /scores -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    card.write_text(f"{head}{start}\n" + "\n".join(rows) + f"\n{end}{tail}")


if __name__ == "__main__":
    main()
