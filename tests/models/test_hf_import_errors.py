"""`i3d-edge import` on unsupported or broken model directories: one line on stderr naming the
file and the cause, exit status 1, no traceback; pickled objects in .bin weights are refused."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")

import torch

from i3d_edge.cli import app
from i3d_edge.models.hf_import import import_hf_model
from tests.hf_models import build_hf_model


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    build_hf_model("Wav2Vec2ForCTC", False, root / "model")
    return root / "model"


@pytest.fixture()
def copy(good: Path, tmp_path: Path) -> Path:
    shutil.copytree(good, tmp_path / "m")
    return tmp_path / "m"


def _one_line_error(src: Path, tmp_path: Path, fragment: str) -> None:
    out = tmp_path / "ckpt.pt"
    result = CliRunner().invoke(app, ["import", str(src), "-o", str(out)])
    lines = result.stderr.splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".ckpt.pt.*"))  # nothing half-written


def _edit_config(src: Path, **changes: object) -> None:
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(changes)
    (src / "config.json").write_text(json.dumps(cfg))


def test_good_directory_imports(good: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import", str(good), "-o", str(tmp_path / "ckpt.pt")])
    assert result.exit_code == 0, result.output
    assert "Wav2Vec2ForCTC (post_ln), 2 layers" in result.stdout and (tmp_path / "ckpt.pt").is_file()


def test_missing_directory(tmp_path: Path) -> None:
    _one_line_error(tmp_path / "nope", tmp_path, "no such model directory")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    _one_line_error(tmp_path / "f", tmp_path, "not a directory")


def test_missing_config(copy: Path, tmp_path: Path) -> None:
    (copy / "config.json").unlink()
    _one_line_error(copy, tmp_path, "missing config.json")


def test_config_not_json(copy: Path, tmp_path: Path) -> None:
    (copy / "config.json").write_text("{not json")
    _one_line_error(copy, tmp_path, "config.json: unreadable JSON")


def test_unsupported_model_type(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, model_type="whisper")
    _one_line_error(copy, tmp_path, "unsupported model_type 'whisper'")


def test_not_a_ctc_model(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, architectures=["Wav2Vec2ForPreTraining"])
    _one_line_error(copy, tmp_path, "is not Wav2Vec2ForCTC")


def test_adapter_unsupported(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, add_adapter=True)
    _one_line_error(copy, tmp_path, "add_adapter is not supported")


def test_unsupported_activation(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, hidden_act="swish")
    _one_line_error(copy, tmp_path, "hidden_act 'swish' is not supported")


def test_missing_vocab(copy: Path, tmp_path: Path) -> None:
    (copy / "vocab.json").unlink()
    _one_line_error(copy, tmp_path, "missing vocab.json")


def test_vocab_with_gaps(copy: Path, tmp_path: Path) -> None:
    (copy / "vocab.json").write_text(json.dumps({"<pad>": 0, "a": 2}))
    _one_line_error(copy, tmp_path, "vocab.json: token ids are not 0..N-1")


def test_vocab_size_mismatch(copy: Path, tmp_path: Path) -> None:
    vocab = json.loads((copy / "vocab.json").read_text())
    vocab["Z"] = len(vocab)
    (copy / "vocab.json").write_text(json.dumps(vocab))
    _one_line_error(copy, tmp_path, "19 tokens but the config's vocab_size is 18")


def test_missing_weights(copy: Path, tmp_path: Path) -> None:
    (copy / "model.safetensors").unlink()
    _one_line_error(copy, tmp_path, "missing model.safetensors or pytorch_model.bin")


def test_corrupt_safetensors(copy: Path, tmp_path: Path) -> None:
    (copy / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    _one_line_error(copy, tmp_path, "model.safetensors: corrupt or unreadable weights")


def test_missing_weight(copy: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(str(copy / "model.safetensors"))
    del weights["lm_head.bias"]
    save_file(weights, str(copy / "model.safetensors"))
    _one_line_error(copy, tmp_path, "missing weight 'lm_head.bias'")


def test_shape_disagrees_with_config(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, intermediate_size=64)
    _one_line_error(copy, tmp_path, "the config implies (64, 32)")


def test_out_of_range_config(copy: Path, tmp_path: Path) -> None:
    _edit_config(copy, hidden_size=10**9)  # refused before anything is allocated
    _one_line_error(copy, tmp_path, "hidden_size 1000000000 is out of range")


def test_pickled_object_in_bin_is_refused(copy: Path, tmp_path: Path) -> None:
    (copy / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(copy / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    _one_line_error(copy, tmp_path, "pytorch_model.bin: refused")


def test_bin_weights_import_like_safetensors(good: Path, tmp_path: Path) -> None:
    """pytorch_model.bin (torch.load weights_only) gives the same checkpoint as safetensors."""
    from safetensors.torch import load_file

    shutil.copytree(good, tmp_path / "bin")
    (tmp_path / "bin" / "model.safetensors").unlink()
    torch.save(load_file(str(good / "model.safetensors")), tmp_path / "bin" / "pytorch_model.bin")
    a, b = import_hf_model(good), import_hf_model(tmp_path / "bin")
    assert a.model_config == b.model_config and a.tokens == b.tokens
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_what_export_would_refuse_is_refused_at_import(copy: Path, tmp_path: Path) -> None:
    """A conv stack of stride 20 gives 800 frames per second: export, train and the runtime refuse such a
    checkpoint (limits.py) with this message, so import refuses the model with the same one, first."""
    from i3d_edge.config import FeatureConfig
    from i3d_edge.errors import ConfigError
    from i3d_edge.limits import LIMITS

    _edit_config(copy, conv_stride=[5, 2, 2, 1])  # (the fixture model's kernels are 10, 3, 3, 2)
    with pytest.raises(ConfigError) as reader:  # what the readers say of such a feature config
        LIMITS.check_features(FeatureConfig(n_mels=1, n_fft=400, win_length=400, hop_length=20, f_min=0.0,
                                            f_max=8000.0, kind="waveform", do_normalize=True))
    _one_line_error(copy, tmp_path, f"config.json: {reader.value}")


def test_an_existing_output_needs_force(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "ckpt.pt"
    out.write_bytes(b"keep me")
    result = CliRunner().invoke(app, ["import", str(good), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {out}: already exists (use --force to replace it)"]
    assert out.read_bytes() == b"keep me"
    result = CliRunner().invoke(app, ["import", str(good), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"keep me" and "every gate open" in result.stdout


def test_a_revision_is_for_model_ids(good: Path, tmp_path: Path) -> None:
    _one_line_error_args = ["import", str(good), "-o", str(tmp_path / "ckpt.pt"), "--revision", "v1"]
    result = CliRunner().invoke(app, _one_line_error_args)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {good}: a revision is for Hub model ids, not a local directory"]
