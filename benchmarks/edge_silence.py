"""Edge silence and weight interpolation, measured: LM word error rate per set for checkpoints or
bundles, with ``edge_silence`` seconds of silence at each end of every utterance (benchmarks/REAL_SPEECH.md).

    python benchmarks/edge_silence.py --checkpoint /work/runs/v07d/best.pt --pads 0,0.1,0.15,0.25 \\
        --sets fsdd_dev,an4_dev,speechocean_dev,synth_dev --work /tmp/edge
    python benchmarks/edge_silence.py --bundle i3d_edge/assets/default --pads 0,0.15

A ``--checkpoint`` is exported (fp32) into ``--work`` with the shipping recipe's LM (its training text:
``recipes/ship_default_model.py``'s ``lm_sentences``) at ``--lm-weight``/``--word-score``;
``--interpolate BASE:ALPHA`` first mixes its weights with BASE's (``ALPHA * ckpt + (1 - ALPHA) * base``,
both fine-tuned from one start). Each pad is the Runtime's ``edge_silence`` knob (the runtime adds
it, as for a bundle exported with it), so every number is what ``i3d-edge transcribe --edge-silence``
gives. Sets: those of
``benchmarks/peers.py`` plus ``synth_dev`` and ``fsdd_dev`` (the synthetic corpus's dev splits).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "recipes"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from benchmarks.peers import set_paths  # noqa: E402


def set_folders(real: Path, corpus: Path) -> dict[str, Path]:
    """The folders of benchmarks/peers.py's sets plus the synthetic corpus's two dev splits."""
    return {**set_paths(real, corpus), "synth_dev": corpus / "dev", "fsdd_dev": corpus / "dev_fsdd"}


def build_bundle(ckpt_path: Path, work: Path, interpolate: str | None, corpus: Path, real: Path,
                 lm_weight: float, word_score: float) -> Path:
    """``ckpt_path`` (mixed with ``interpolate``'s BASE:ALPHA) exported with the shipping LM into ``work``,
    in a folder named after the run, checkpoint and alpha; an existing one is reused."""
    from ship_default_model import attach_training_lm

    from i3d_edge.export import export_bundle
    from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint

    tag = f"-mix{interpolate.rpartition(':')[2]}" if interpolate else ""
    out = work / f"{ckpt_path.parent.name}-{ckpt_path.stem}{tag}"
    if (out / "manifest.json").is_file():
        return out
    ckpt = load_checkpoint(ckpt_path)
    ckpt.train_state = {k: v for k, v in ckpt.train_state.items() if k != "optimizer"}
    if interpolate:
        base_path, _, alpha_text = interpolate.rpartition(":")
        alpha, base = float(alpha_text), load_checkpoint(Path(base_path)).state_dict
        ckpt.state_dict = {k: alpha * v + (1 - alpha) * base[k] if v.is_floating_point() else v
                           for k, v in ckpt.state_dict.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.parent / f"{out.name}.pt"  # not with_suffix: "v07f-mix0.7" -> "v07f-mix0.pt"
    save_checkpoint(weights, ckpt)
    export_bundle(weights, out, force=True)
    attach_training_lm(out, corpus, real, lm_weight=lm_weight, word_score=word_score, beam_size=256)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, action="append", default=[])
    ap.add_argument("--bundle", type=Path, action="append", default=[])
    ap.add_argument("--interpolate", default=None, help="BASE_CKPT:ALPHA (for every --checkpoint)")
    ap.add_argument("--pads", default="0,0.15", help="comma list of edge_silence seconds")
    ap.add_argument("--sets", default="an4_test,ljspeech_dev,speechocean_dev,fsdd_test,synth_voices")
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--real-corpus", type=Path, default=Path("/work/data/real"))
    ap.add_argument("--lm-weight", type=float, default=1.6)
    ap.add_argument("--word-score", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge_silence"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from i3d_edge.apps.evaluation import evaluate_corpus
    from i3d_edge.runtime import Runtime

    paths = set_folders(args.real_corpus, args.corpus)
    bundles = list(args.bundle) + [
        build_bundle(c, args.work, args.interpolate, args.corpus, args.real_corpus, args.lm_weight,
                     args.word_score) for c in args.checkpoint]
    rows = []
    for bundle in bundles:
        for pad in (float(p) for p in args.pads.split(",")):
            runtime = Runtime(bundle, threads=2, decoder="lm", edge_silence=pad)  # as --edge-silence does
            for name in args.sets.split(","):
                r = evaluate_corpus(runtime, paths[name]).to_dict()
                rows.append({"bundle": str(bundle), "edge_silence": pad, "set": name, **r})
                print(f"{bundle.name:24s} edge {pad:4.2f} {name:15s} WER {100 * r['wer']:6.2f}  CER "
                      f"{100 * r['cer']:6.2f}  utt acc {100 * r['sentence_accuracy']:5.1f}  "
                      f"modules {r['modules_executed']:.1f}/{r['modules_total']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
