"""Does the gate predictor key on digital silence (exact-zero samples)?

Modules run at threshold 0.5 by the default model for 25 dev utterances per TTS engine: clean,
with +-1 LSB dither everywhere, and with dither only on the exact zeros.

    PYTHONPATH=. python benchmarks/depth_dither.py [--corpus /work/data/corpus]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from i3d_edge.audio import load_audio
from i3d_edge.features import log_mel, normalize
from i3d_edge.models.checkpoint import load_checkpoint
from i3d_edge.models.i3d import I3DModel, padding_mask

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "recipes" / "default_model" / "ckpt.pt")
    ap.add_argument("--per-source", type=int, default=25)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ckpt = load_checkpoint(args.checkpoint)
    model = I3DModel(ckpt.model_config)
    model.load_state_dict(ckpt.state_dict)
    model.eval()
    fc = ckpt.feature_config
    rng = np.random.default_rng(0)

    def modules(x: np.ndarray) -> int:
        feats = normalize(log_mel(x, fc), fc)  # (T, n_mels)
        with torch.no_grad():
            h, lens = model.frontend(torch.from_numpy(feats)[None], torch.tensor([feats.shape[0]]))
            probs = model.gate(h, padding_mask(lens, h.shape[1])).sigmoid()[0]  # (2N,)
        return int((probs > 0.5).sum())

    dev = args.corpus / "dev"
    with open(dev / "meta.tsv", encoding="utf-8") as fh:
        meta = [row for row in csv.reader(fh, delimiter="\t")][1:]
    rows: dict[str, list[tuple[float, int, int, int]]] = {}
    for uid, source, *_ in meta:
        if len(rows.setdefault(source, [])) >= args.per_source:
            continue
        x = load_audio(dev / "audio" / f"{uid}.wav", target_rate=16000)
        zeros = x == 0
        dithered = x + rng.uniform(-1, 1, x.shape).astype(np.float32) / 32768  # +-1 LSB, about -95 dBFS
        filled = x.copy()
        filled[zeros] = rng.uniform(-1, 1, int(zeros.sum())).astype(np.float32) / 32768
        rows[source].append((float(zeros.mean()), modules(x), modules(dithered), modules(filled)))
    for source, values in rows.items():
        a = np.array(values)
        print(f"{source:10s} n={len(a)} exact-zero samples {100 * a[:, 0].mean():5.1f}%  modules clean "
              f"{a[:, 1].mean():5.2f}  +-1 LSB dither {a[:, 2].mean():5.2f}  "
              f"dither only the zeros {a[:, 3].mean():5.2f}")


if __name__ == "__main__":
    main()
