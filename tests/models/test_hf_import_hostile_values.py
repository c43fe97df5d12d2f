"""`i3d-edge import` on model directories whose values are of the wrong kind (round three of the hostile
cases): a list as ``model_type``, positional-conv groups that do not divide the width, complex or
integer weights, a vocabulary token with a control character. Each is one line naming the file and
the cause, exit status 1, no traceback and no warning, nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

import torch  # noqa: E402

from i3d_edge.cli import app  # noqa: E402
from tests.hf_models import build_hf_model  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    build_hf_model("Wav2Vec2ForCTC", False, root / "model")
    return root / "model"


def _config(**changes: object) -> Callable[[Path], None]:
    def edit(src: Path) -> None:
        cfg = json.loads((src / "config.json").read_text())
        cfg.update(changes)
        (src / "config.json").write_text(json.dumps(cfg))

    return edit


def _weight_as(dtype: torch.dtype) -> Callable[[Path], None]:
    def edit(src: Path) -> None:
        weights = safetensors_torch.load_file(str(src / "model.safetensors"))
        name = next(k for k in weights if k.endswith("feed_forward.output_dense.weight"))
        weights[name] = weights[name].to(dtype)
        safetensors_torch.save_file(weights, str(src / "model.safetensors"))

    return edit


# case -> (edit, file named, fragment of the one-line error)
CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "model_type_list": (_config(model_type=["wav2vec2"]), "config.json", "unsupported model_type \"['wav2vec2']\""),
    "model_type_object": (_config(model_type={"a": 1}), "config.json", "unsupported model_type"),
    "pos_groups_not_dividing": (_config(num_conv_pos_embedding_groups=5), "config.json",
                                "pos_conv_groups 5 does not divide d_model 32"),
    "conv_stride_of_200_000": (_config(conv_stride=[10, 10, 10, 200]), "config.json",
                               "conv strides of 200000 samples per encoder frame are beyond the ceiling"),
    "complex64_weight": (_weight_as(torch.complex64), "model.safetensors", "is torch.complex64, not a real float"),
    "int32_weight": (_weight_as(torch.int32), "model.safetensors", "is torch.int32, not a real float"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_value_is_one_line(good, tmp_path, case):
    edit, named, fragment = CASES[case]
    src = Path(shutil.copytree(good, tmp_path / "m"))
    edit(src)
    out = tmp_path / "ckpt.pt"
    result = CliRunner().invoke(app, ["import", str(src), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Warning" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {src / named}: ") and fragment in lines[0], lines
    assert not out.exists()
