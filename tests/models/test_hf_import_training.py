"""Gate learning for an imported model: gate-only fine-tuning (``train --init ckpt.pt --train-only
gates``) reads raw audio for a waveform-frontend model, moves the gate probabilities in the direction
of the gate objective (a low target closes gates) and leaves every imported weight untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")

import torch

from i3d_edge.features import extract_features
from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint
from i3d_edge.models.hf_import import import_hf_model
from i3d_edge.models.train import TrainConfig, train
from tests.conftest import speechlike
from tests.hf_models import build_hf_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    with open(root / "transcripts.tsv", "w", encoding="utf-8") as fh:
        for i, text in enumerate(["one two", "three", "four five six", "seven", "eight nine", "zero"]):
            sf.write(root / "audio" / f"u{i}.wav", speechlike(0.5 + 0.3 * i, seed=i), 16000)
            fh.write(f"u{i}\t{text}\n")
    return root


def _gate_probs(ckpt_path: Path, corpus: Path) -> np.ndarray:
    import soundfile as sf

    ckpt = load_checkpoint(ckpt_path)
    model = ckpt.build_model()
    rows = []
    for i in range(6):
        audio, _ = sf.read(corpus / "audio" / f"u{i}.wav", dtype="float32")
        feats = torch.from_numpy(extract_features(audio, ckpt.feature_config))[None]  # (1, N, 1)
        with torch.no_grad():
            rows.append(model(feats, torch.tensor([feats.shape[1]])).gate_probs[0].numpy())
    return np.stack(rows)  # (U, 2N)


def _fine_tune(init: Path, corpus: Path, run: Path, target: float) -> Path:
    """Gate-only fine-tuning with the ``target`` objective pulling the executed fraction to ``target``."""
    cfg = TrainConfig(max_steps=20, batch_frames=400, warmup_steps=1, gate_warmup_steps=0, eval_every=20,
                      save_every=10, lr=0.05, gate_lambda=20.0, gate_objective="target", gate_target=target,
                      train_only="gates")
    return train(run, [corpus], [corpus], load_checkpoint(init).model_config, cfg, init=init, threads=1, jobs=1,
                 log=lambda _m: None)


def test_gate_only_fine_tuning_of_an_imported_model(tmp_path: Path, corpus: Path) -> None:
    build_hf_model("Wav2Vec2ForCTC", False, tmp_path / "hf")
    init = tmp_path / "imported.pt"
    save_checkpoint(init, import_hf_model(tmp_path / "hf"))
    best = _fine_tune(init, corpus, tmp_path / "low", 0.2)
    _fine_tune(init, corpus, tmp_path / "high", 1.0)  # the same run but for the target: the control
    before = _gate_probs(init, corpus)
    after, high = _gate_probs(tmp_path / "low" / "last.pt", corpus), _gate_probs(tmp_path / "high" / "last.pt", corpus)
    assert np.allclose(before, 1 / (1 + np.exp(-3.0)), atol=1e-6)  # imported: every gate open, p = sigmoid(3)
    assert np.ptp(after, axis=0).max() > 1e-4  # the predictor's output now depends on the input
    # a low target closes gates: the mean gate probability (the expected executed fraction) falls,
    # for every utterance, and well below that of the same run with target 1.0 (the CTC loss of a
    # random model closes some gates too: the control separates the objective's pull from it)
    assert after.mean() < before.mean() - 0.1
    assert (after.mean(axis=1) < high.mean(axis=1) - 0.05).all()
    a, b = load_checkpoint(init).state_dict, load_checkpoint(best).state_dict
    frozen = [k for k in a if not k.startswith("gate.")]
    assert frozen and all(torch.equal(a[k], b[k]) for k in frozen)  # only the gate predictor learned
    assert load_checkpoint(best).tokens == load_checkpoint(init).tokens  # the source vocabulary is kept
    # the run ends by saying what the gates learned: last.pt's executed fraction at threshold 0.5 on dev
    final = json.loads((tmp_path / "low" / "final.json").read_text())
    assert final["threshold"] == 0.5 and final["utterances"] == 6
    assert final["executed_fraction"] == pytest.approx(float((after > 0.5).mean()), abs=1e-6)
    assert 0.0 <= final["full_depth_cer"] and 0.0 <= final["cer"]
