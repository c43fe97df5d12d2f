"""The feature extractor is read wherever the installed ``transformers`` writes it, and an imported
model then transcribes as the library does, with ``do_normalize`` true and false.

Each case saves a tiny random model, then its feature extractor through the library's own
``save_pretrained``: alone (``preprocessor_config.json``) or inside a ``Wav2Vec2Processor``
(``processor_config.json`` with a ``feature_extractor`` section in transformers 5). The reference is
the library end to end: ``AutoFeatureExtractor.from_pretrained`` of the same directory prepares the
audio (with its attention mask where the extractor returns one), the model's logits give the
log-probs and the tokenizer decodes the argmax path. The imported model goes through export and
the torch-free runtime. The audio is quiet and off-centre, so normalising or not changes the
output: a wrong ``do_normalize`` cannot pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")  # the [import] extra; CI installs it with [dev]

import torch
import transformers

from i3d_edge.errors import SourceModelError
from i3d_edge.export import export_bundle
from i3d_edge.models.checkpoint import save_checkpoint
from i3d_edge.models.hf_import import import_hf_model
from i3d_edge.runtime import Runtime
from tests.hf_models import build_hf_model

TOL = 1e-4
TF5 = int(transformers.__version__.split(".")[0]) >= 5
# (how the feature extractor is saved, do_normalize, stable-layer-norm model with attention masks)
CASES = [(saved, norm, stable) for saved in ("feature_extractor", "processor") for norm in (True, False)
         for stable in (False, True)]
LENGTHS = (16000, 9000, 23999)


def _save(hf_dir: Path, saved: str, norm: bool, mask: bool) -> None:
    """The library writes the feature extractor (and, for a processor, the tokenizer) into hf_dir."""
    (hf_dir / "preprocessor_config.json").unlink()  # the helper's own file: only the library's remain
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=norm, return_attention_mask=mask)
    if saved == "feature_extractor":
        fe.save_pretrained(str(hf_dir))
    else:
        tokenizer = transformers.Wav2Vec2CTCTokenizer(str(hf_dir / "vocab.json"))
        transformers.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tokenizer).save_pretrained(str(hf_dir))


def _audio(n: int, seed: int) -> np.ndarray:
    """Quiet (peak ~0.03) with a DC offset: far from zero mean and unit variance."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.02 + 0.01 * np.sin(2 * np.pi * 150 * t) + 0.003 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module", params=CASES,
                ids=[f"{s}-{'normalize' if n else 'raw'}-{'mask' if m else 'nomask'}" for s, n, m in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    saved, norm, stable = request.param
    root = tmp_path_factory.mktemp("norm")
    hf = build_hf_model("Wav2Vec2ForCTC", stable, root / "hf", seed=3)
    _save(root / "hf", saved, norm, mask=stable)
    ckpt = import_hf_model(root / "hf")
    save_checkpoint(root / "ckpt.pt", ckpt)
    export_bundle(root / "ckpt.pt", root / "bundle", simplify=False, verify=False)  # compared to the library below
    return request.param, hf, ckpt, Runtime(root / "bundle", decoder="greedy"), root / "hf"


def test_the_library_wrote_the_file_its_version_writes(case) -> None:
    (saved, norm, mask), _, ckpt, _, hf_dir = case
    expected = "processor_config.json" if saved == "processor" and TF5 else "preprocessor_config.json"
    assert sorted(p.name for p in hf_dir.glob("*processor_config.json")) == [expected]
    section = json.loads((hf_dir / expected).read_text())
    section = section.get("feature_extractor", section)
    assert section["do_normalize"] is norm and section["return_attention_mask"] is mask
    assert ckpt.feature_config.do_normalize is norm  # read from that file, not defaulted


def test_log_probs_and_text_equal_the_library(case) -> None:
    (_, norm, mask), hf, _, rt, hf_dir = case
    extractor = transformers.AutoFeatureExtractor.from_pretrained(str(hf_dir))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(hf_dir / "vocab.json"))
    assert extractor.do_normalize is norm
    audios = [_audio(n, n) for n in LENGTHS]
    inputs = extractor(audios, sampling_rate=16000, padding=True, return_tensors="pt")
    assert ("attention_mask" in inputs) is mask
    with torch.no_grad():
        if mask:  # the library's padded batch, rows masked
            want = hf(**inputs).logits.log_softmax(-1).numpy()
        else:  # without a mask the library's reference is each row alone
            want = [hf(**extractor(a, sampling_rate=16000, return_tensors="pt")).logits.log_softmax(-1)[0].numpy()
                    for a in audios]
    results = rt.transcribe_batch(audios, 16000)
    for row, (audio, result) in enumerate(zip(audios, results, strict=True)):
        frames = hf._get_feat_extract_output_lengths(len(audio))
        ref = want[row][:frames]  # (T', V)
        got = rt.forward(*_features(rt, audio)).log_probs[0, :frames]
        assert np.abs(got - ref).max() < TOL
        assert np.ptp(ref, axis=-1).min() > 1.0  # the comparison is not between near-uniform outputs
        assert result.text == tokenizer.decode(ref.argmax(-1).tolist(), clean_up_tokenization_spaces=False)


def _features(rt: Runtime, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from i3d_edge.features import extract_features

    feats = extract_features(audio, rt.manifest.feature_config)  # (N, 1)
    return feats[None], np.array([feats.shape[0]])


def test_normalising_or_not_changes_the_output(tmp_path: Path) -> None:
    """The control: the same weights and audio with the other do_normalize give other log-probs, so the
    parity above depends on reading the setting right."""
    from i3d_edge.features import extract_features

    outs = []
    for norm in (True, False):
        build_hf_model("Wav2Vec2ForCTC", False, tmp_path / str(norm), seed=3)
        _save(tmp_path / str(norm), "processor", norm, mask=False)
        ckpt = import_hf_model(tmp_path / str(norm))
        feats = torch.from_numpy(extract_features(_audio(16000, 1), ckpt.feature_config))[None]  # (1, N, 1)
        with torch.no_grad():
            outs.append(ckpt.build_model()(feats, torch.tensor([16000])).log_probs.numpy())
    assert np.abs(outs[0] - outs[1]).max() > 1000 * TOL  # (the first conv layer's GroupNorm absorbs much)


def _settings(tmp_path: Path, pre: dict | None, proc: dict | None) -> Path:
    build_hf_model("Wav2Vec2ForCTC", False, tmp_path / "hf")
    (tmp_path / "hf" / "preprocessor_config.json").unlink()
    if pre is not None:
        (tmp_path / "hf" / "preprocessor_config.json").write_text(json.dumps(pre))
    if proc is not None:
        (tmp_path / "hf" / "processor_config.json").write_text(json.dumps(proc))
    return tmp_path / "hf"


FE = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
      "do_normalize": False, "padding_value": 0.0, "padding_side": "right", "return_attention_mask": False}


@pytest.mark.parametrize(("pre", "proc", "fragment"), [
    ({**FE, "do_normalize": True}, {"feature_extractor": FE, "processor_class": "Wav2Vec2Processor"},
     "contradictory do_normalize: True in preprocessor_config.json, False in processor_config.json"),
    ({**FE, "sampling_rate": 8000}, {"feature_extractor": FE},
     "contradictory sampling_rate: 8000 in preprocessor_config.json, 16000 in processor_config.json"),
    ({**FE, "do_normalise": True}, None, "unknown feature-extractor setting 'do_normalise'"),
    (None, {"feature_extractor": {**FE, "feature_extractor_type": "WhisperFeatureExtractor"}},
     "unsupported feature_extractor_type 'WhisperFeatureExtractor'"),
    ({**FE, "feature_size": 80}, None, "unsupported feature_size 80"),
    ({**FE, "do_normalize": "yes"}, None, "unsupported do_normalize 'yes'"),
    (None, None, "no preprocessor_config.json or processor_config.json"),
])
def test_unknown_or_contradictory_settings_are_errors(tmp_path: Path, pre, proc, fragment: str) -> None:
    with pytest.raises(SourceModelError) as info:
        import_hf_model(_settings(tmp_path, pre, proc))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_agreeing_files_are_read_together(tmp_path: Path) -> None:
    src = _settings(tmp_path, FE, {"feature_extractor": FE, "processor_class": "Wav2Vec2Processor"})
    assert import_hf_model(src).feature_config.do_normalize is False


def test_without_settings_the_user_says_whether_to_normalise(tmp_path: Path) -> None:
    src = _settings(tmp_path, None, None)
    assert import_hf_model(src, do_normalize=False).feature_config.do_normalize is False
    assert import_hf_model(src, do_normalize=True).feature_config.do_normalize is True
    src = _settings(tmp_path / "b", FE, None)
    with pytest.raises(SourceModelError, match="do_normalize is False, contradicting the --normalize given"):
        import_hf_model(src, do_normalize=True)
