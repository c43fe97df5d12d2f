"""Export errors stay one line: library warnings are not printed around them, and a message never
names the staging folder (it is removed by the time the message is read) but the bundle."""

from __future__ import annotations

import pickle

import pytest

from tests.conftest import TINY, one_line_error, run_cli

torch = pytest.importorskip("torch", reason="export needs the [export] extra (torch)")
pytest.importorskip("onnx", reason="export needs the [export] extra (onnx)")


def test_a_protocol_4_pickle_checkpoint_is_one_line_without_warnings(make_checkpoint, tmp_path):
    data = torch.load(make_checkpoint("global", 2, **TINY), weights_only=True)
    path = tmp_path / "p4.pt"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)  # not torch's zip format: the weights-only unpickler warns, then fails
    proc = run_cli("export", str(path), "-o", str(tmp_path / "b"))
    one_line_error(proc, f"{path}: corrupt or not a checkpoint file")
    assert not (tmp_path / "b").exists()


def test_weights_of_1e38_are_one_line_naming_the_bundle(make_checkpoint, tmp_path):
    """Finite (so not refused up front) but they overflow float32 arithmetic: the verification fails,
    in one line that names the bundle being written, not its removed staging folder."""
    from i3d_edge.errors import ExportError
    from i3d_edge.export import export_bundle
    from i3d_edge.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(make_checkpoint("global", 2, **TINY))
    name = next(k for k in ckpt.state_dict if "ffn" in k and k.endswith("weight"))
    ckpt.state_dict[name].fill_(1e38)
    out = tmp_path / "b"
    with pytest.raises(ExportError) as info:
        export_bundle(ckpt, out)
    message = str(info.value)
    assert message.startswith(f"{out}/fp32/") and ".partial-" not in message and "\n" not in message
    assert "non-finite" in message
    assert list(tmp_path.iterdir()) == []  # no bundle, no staging folder
