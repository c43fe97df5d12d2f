"""Imported Hugging Face CTC models match the real library through export and the runtime.

For every supported class and layer-norm layout: a small random ``transformers`` model (built
offline) is imported, exported (fp32, the export's own torch-vs-ONNX verification included) and
run by the torch-free runtime; its log-probs must equal ``log_softmax(logits)`` of the library's
model within 1e-4 on audio of several lengths and on a padded batch of mixed lengths, and the
greedy transcripts must equal the library's CTC tokenizer's decoding of the argmax path.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")  # the [import] extra; CI installs it with [dev]

import torch

from i3d_edge.export import export_bundle
from i3d_edge.features import batch_features, extract_features
from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint
from i3d_edge.models.hf_import import import_hf_model
from i3d_edge.runtime import Runtime
from tests.hf_models import KINDS, build_hf_model

TOL = 1e-4
LENGTHS = (400, 3217, 16000, 47999)  # samples: one encoder frame (the receptive field) to 3 s


@pytest.fixture(scope="module", params=KINDS, ids=[f"{k}-{'pre_ln' if s else 'post_ln'}" for k, s in KINDS])
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    kind, stable = request.param
    root = tmp_path_factory.mktemp(kind)
    hf = build_hf_model(kind, stable, root / "hf")
    ckpt_path = root / "ckpt.pt"
    save_checkpoint(ckpt_path, import_hf_model(root / "hf"))
    export_bundle(ckpt_path, root / "bundle", simplify=False)  # verify=True: ONNX vs torch within 1e-4
    return hf, load_checkpoint(ckpt_path), Runtime(root / "bundle"), root


def _audio(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * rng.uniform(0.2, 1) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _reference(hf: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """The library's CTC log-probs of one unpadded utterance: (T', V)."""
    with torch.no_grad():
        return hf(torch.from_numpy(inputs)[None]).logits.log_softmax(-1)[0].numpy()


def test_imported_checkpoint_is_ordinary_with_open_gates(imported) -> None:
    hf, ckpt, rt, _ = imported
    assert ckpt.model_config.frontend == "waveform"
    assert ckpt.model_config.layout == ("pre_ln" if hf.config.do_stable_layer_norm else "post_ln") \
        if hasattr(hf.config, "do_stable_layer_norm") else ckpt.model_config.layout == "post_ln"
    assert ckpt.tokens.tokens[0] == "<blank>" and " " in ckpt.tokens.tokens and "|" not in ckpt.tokens.tokens
    feats = extract_features(_audio(16000, 0), ckpt.feature_config)
    out = rt.forward(feats[None], np.array([feats.shape[0]]))
    assert out.gates.all() and (out.gate_probs > 0.9).all()  # every module runs until gates are trained


@pytest.mark.parametrize("n", LENGTHS)
def test_single_utterance_log_probs_match_transformers(imported, n: int) -> None:
    hf, ckpt, rt, _ = imported
    feats = extract_features(_audio(n, n), ckpt.feature_config)  # (N, 1) normalised samples
    want = _reference(hf, feats[:, 0])
    out = rt.forward(feats[None], np.array([n]))
    assert int(out.lens[0]) == want.shape[0]
    got = out.log_probs[0, : want.shape[0]]
    assert np.abs(got - want).max() < TOL
    assert np.ptp(want, axis=-1).min() > 1.0  # the comparison is not between near-uniform outputs


def test_mixed_length_batch_matches_each_utterance_alone(imported) -> None:
    hf, ckpt, rt, _ = imported
    feats = [extract_features(_audio(n, 7 + n), ckpt.feature_config) for n in (23999, 400, 40111, 9000)]
    batch, lens = batch_features(feats)  # (B, N, 1), zero padded
    out = rt.forward(batch, lens)
    for row, f in enumerate(feats):
        want = _reference(hf, f[:, 0])
        assert int(out.lens[row]) == want.shape[0]
        assert np.abs(out.log_probs[row, : want.shape[0]] - want).max() < TOL


def test_greedy_transcripts_equal_the_library_decoding(imported) -> None:
    from transformers import Wav2Vec2CTCTokenizer

    hf, ckpt, rt, root = imported
    tokenizer = Wav2Vec2CTCTokenizer(str(root / "hf" / "vocab.json"))
    texts = []
    for n in (16000, 47999):
        audio = _audio(n, 100 + n)
        feats = extract_features(audio, ckpt.feature_config)
        with torch.no_grad():
            ids = hf(torch.from_numpy(feats[:, 0])[None]).logits.argmax(-1)[0]
        want = tokenizer.decode(ids.tolist(), clean_up_tokenization_spaces=False)
        got = rt.transcribe(audio, 16000).text
        assert got == want
        texts.append(got)
    assert any(t.strip() for t in texts)  # something was transcribed
