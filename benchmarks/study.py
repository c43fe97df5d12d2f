"""The I3D trade-off study (issue #8): WER against executed modules, I3D vs vanilla vs pruned.

Stage 1, training (every model the same wall-clock budget, data and seed), on a GPU machine
or, slower, on CPU::

    bash recipes/gpu_train.sh OUT                 # default + study models side by side
    DEVICE=cpu MINUTES=45 bash recipes/gpu_train.sh OUT

It leaves vanilla3/4/6, global-t0.5/0.7 and local-t0.5/0.7 checkpoints (6 layers, d_model 144).

Stage 2, this script: iterative pruning of vanilla6 (remove the module whose removal hurts dev
CER least, fine-tune, repeat), then every model on the held-out synthetic voices and on
ljspeech-dev (I3D models at several thresholds), then ``STUDY.md``, ``study.json`` and
``study.png`` next to this file::

    python benchmarks/study.py --runs RUN_DIR --corpus /work/data/corpus2
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from i3d_edge.config import FeatureConfig
from i3d_edge.models.checkpoint import Checkpoint, load_checkpoint
from i3d_edge.models.data import FeatureSet
from i3d_edge.models.train import TrainConfig, evaluate, train

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
I3D = ["global-t0.5", "global-t0.7", "local-t0.5", "local-t0.7"]
VANILLA = ["vanilla3", "vanilla4", "vanilla6"]
THRESHOLDS = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95]


def load(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    ckpt.state_dict = {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    return ckpt


def prune(vanilla6: Path, work: Path, train_dir: Path, dev_dir: Path, dev: FeatureSet, rounds: int, steps: int,
          log=print) -> list[tuple[int, Path]]:
    """Iterative pruning: each round removes the module whose removal costs least dev CER,
    then fine-tunes the rest for ``steps`` steps. Returns (modules kept, checkpoint) per round."""
    current = vanilla6
    mask = [1] * load(vanilla6).model_config.n_gates
    out = []
    for r in range(rounds):
        ckpt = load(current)
        model = ckpt.build_model().eval()
        best = None
        for m in [i for i, v in enumerate(mask) if v]:
            trial = torch.tensor([0.0 if i == m else float(v) for i, v in enumerate(mask)])
            cer = evaluate(model, dev, ckpt.feature_config, ckpt.tokens, full_depth=True, module_mask=trial)["cer"]
            if best is None or cer < best[1]:
                best = (m, cer)
        assert best is not None
        mask[best[0]] = 0
        kind = "mha" if best[0] % 2 == 0 else "ffn"
        log(f"prune round {r + 1}: remove layer {best[0] // 2} {kind} (dev CER without it {100 * best[1]:.1f}%)")
        run = work / f"prune{r + 1}"
        if not (run / "last.pt").exists():
            cfg = TrainConfig(lr=5e-4, warmup_steps=10, max_steps=steps, batch_frames=12_000, eval_every=10**9,
                              save_every=10**9, gate_warmup_steps=0)
            run.mkdir(parents=True, exist_ok=True)
            cache = work / "cache"
            if not (run / "cache").exists():
                (run / "cache").symlink_to(cache, target_is_directory=True)
                cache.mkdir(exist_ok=True)
            train(run, [train_dir], [dev_dir], ckpt.model_config, cfg, init=current, module_mask=mask,
                  threads=2, log=lambda m: None)
        current = run / "last.pt"
        out.append((sum(mask), current))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="folder with the study checkpoints (NAME.pt)")
    ap.add_argument("--corpus", type=Path, required=True, help="corpus with train/, dev/ and test_voices/")
    ap.add_argument("--ljspeech", type=Path, default=SHARED / "data" / "ljspeech-dev")
    ap.add_argument("--prune-rounds", type=int, default=6)
    ap.add_argument("--prune-steps", type=int, default=60, help="fine-tuning steps after each removal")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--report-only", action="store_true", help="redraw the table and plot from OUT/study.json")
    args = ap.parse_args()
    if args.report_only:
        saved = json.loads((args.out / "study.json").read_text())
        write_report(saved["rows"], saved["command"], args.out, saved.get("seconds", 0.0))
        return
    torch.set_num_threads(2)
    t0 = time.time()
    work = args.runs / "study_work"
    work.mkdir(exist_ok=True)
    fcfg = FeatureConfig()
    sets = {"test_voices": FeatureSet.build([args.corpus / "test_voices"], fcfg, work / "eval_cache"),
            "ljspeech_dev": FeatureSet.build([args.ljspeech], fcfg, work / "eval_cache")}
    dev = FeatureSet.build([args.corpus / "dev"], fcfg, work / "eval_cache")

    pruned = prune(args.runs / "vanilla6.pt", work, args.corpus / "train", args.corpus / "dev", dev, args.prune_rounds,
                   args.prune_steps)
    rows = []

    def measure(name: str, family: str, ckpt: Checkpoint, **kw) -> None:
        model = ckpt.build_model().eval()
        mask = ckpt.train_state.get("module_mask")
        mask_t = torch.tensor(mask, dtype=torch.float32) if mask else None
        row = {"model": name, "family": family, "layers": ckpt.model_config.n_layers,
               "steps": ckpt.train_state.get("step"), **{k: v for k, v in kw.items()}}
        for set_name, data in sets.items():
            m = evaluate(model, data, ckpt.feature_config, ckpt.tokens, module_mask=mask_t, **kw)
            modules = m["executed_fraction"] * ckpt.model_config.n_gates
            row[set_name] = {"wer": m["wer"], "cer": m["cer"], "modules": modules}
        rows.append(row)
        v = row["test_voices"]
        print(f"{name:14s} {kw}  voices WER {100 * v['wer']:.1f} CER {100 * v['cer']:.1f} "
              f"modules {row['test_voices']['modules']:.2f} | ljspeech WER {100 * row['ljspeech_dev']['wer']:.1f}",
              flush=True)

    for name in VANILLA:
        measure(name, "vanilla", load(args.runs / f"{name}.pt"), full_depth=True)
    for kept, path in pruned:
        measure(f"pruned-{kept}", "pruned", load(path), full_depth=True)
    for name in I3D:
        ckpt = load(args.runs / f"{name}.pt")
        measure(name, "i3d-" + name.split("-")[0], ckpt, full_depth=True)
        for th in THRESHOLDS:
            measure(name, "i3d-" + name.split("-")[0], ckpt, threshold=th)
    command = "python benchmarks/study.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    seconds = time.time() - t0
    (args.out / "study.json").write_text(json.dumps({"command": command, "seconds": seconds, "rows": rows}, indent=1))
    write_report(rows, command, args.out, seconds)


def write_report(rows: list[dict], command: str, out: Path, seconds: float) -> None:
    lines = ["| model | family | setting | steps | modules (voices) | voices WER % | voices CER % | "
             "modules (ljspeech) | ljspeech WER % | ljspeech CER % |", "|" + "---|" * 10]
    for r in rows:
        setting = "full depth" if r.get("full_depth") else f"threshold {r['threshold']}"
        v, lj = r["test_voices"], r["ljspeech_dev"]
        lines.append(f"| {r['model']} | {r['family']} | {setting} | {r['steps']} | {v['modules']:.2f} | "
                     f"{100 * v['wer']:.1f} | {100 * v['cer']:.1f} | {lj['modules']:.2f} | {100 * lj['wer']:.1f} | "
                     f"{100 * lj['cer']:.1f} |")
    (out / "study_table.md").write_text(f"Command: `{command}` ({seconds / 60:.1f} min)\n\n" + "\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install '.[plot]' in the source folder): no plot")
        return
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    styles = {"vanilla": ("s", "C0"), "pruned": ("v", "C1"), "i3d-global": ("o", "C2"), "i3d-local": ("^", "C3")}
    for row_axes, metric in zip(axes, ("wer", "cer"), strict=True):
        for ax, set_name in zip(row_axes, ("test_voices", "ljspeech_dev"), strict=True):
            for fam, (marker, color) in styles.items():
                pts = sorted((r[set_name]["modules"], 100 * r[set_name][metric]) for r in rows if r["family"] == fam)
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, marker=marker, color=color, label=fam, alpha=0.8,
                            linestyle="-" if fam in ("pruned", "vanilla") else "none")
            ax.set_xlabel("executed modules (MHA + FFN) per utterance, of 12")
            ax.set_ylabel(f"{metric.upper()} %")
            ax.set_title(f"{set_name.replace('_', '-')}: {metric.upper()}")
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=120)


if __name__ == "__main__":
    main()
