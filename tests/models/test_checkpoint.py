"""Checkpoint format: plain data only, validated, atomic; ``i3d-edge init`` writes one."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from i3d_edge.errors import CheckpointError  # noqa: E402
from i3d_edge.models.checkpoint import load_checkpoint, random_checkpoint, save_checkpoint  # noqa: E402
from tests.conftest import small_config  # noqa: E402


def test_round_trip_and_config_travels_with_weights(tmp_path):
    ckpt = random_checkpoint(small_config("local", 3), seed=3)
    save_checkpoint(tmp_path / "c.pt", ckpt)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded.model_config == ckpt.model_config and loaded.tokens == ckpt.tokens
    a, b = ckpt.build_model(), loaded.build_model()
    x, lens = torch.randn(1, 50, 80), torch.tensor([50])
    with torch.no_grad():
        assert torch.equal(a(x, lens).log_probs, b(x, lens).log_probs)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


class Payload:
    """Unpickling this would create a file: the loader must never execute it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_object_is_refused_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    data = random_checkpoint(small_config()).to_dict()
    data["train_state"] = {"evil": Payload(str(marker))}
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        torch.save(data, fh, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "truncated", "not_i3d", "version", "shapes",
                                  "nan_mean"])
def test_bad_checkpoints_are_one_line_errors(tmp_path, case):
    path = tmp_path / "c.pt"
    good = random_checkpoint(small_config()).to_dict()
    if case == "directory":
        path.mkdir()
    elif case == "garbage":
        path.write_bytes(os.urandom(4096))
    elif case == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:2000])
    elif case == "not_i3d":
        torch.save({"state_dict": {}}, path)
    elif case == "version":
        torch.save({**good, "version": 99}, path)
    elif case == "nan_mean":
        good["feature_config"]["mean"] = [float("nan")] * len(good["feature_config"]["mean"] or [0.0] * 80)
        torch.save(good, path)
    elif case == "shapes":
        good["state_dict"]["head.linear.weight"] = torch.zeros(3, 3)
        torch.save(good, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_init_command_writes_loadable_checkpoint(tmp_path):
    out = tmp_path / "ckpt.pt"
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "init", "-o", str(out), "--layers", "3",
                           "--d-model", "32", "--heads", "2", "--gates", "local"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(out)
    assert ckpt.model_config.n_layers == 3 and ckpt.model_config.gates == "local"
    bad = subprocess.run([sys.executable, "-m", "i3d_edge", "init", "-o", str(out), "--heads", "5"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_init_command_writes_a_conformer(tmp_path):
    """``init --arch`` picks the layer's module kinds; a bad choice or kernel is one line naming it."""
    from typer.testing import CliRunner

    from i3d_edge.cli import app

    out = tmp_path / "conformer.pt"
    result = CliRunner().invoke(app, ["init", "-o", str(out), "--layers", "2", "--d-model", "32", "--heads", "2",
                                      "--arch", "conformer-macaron", "--depthwise-kernel", "7"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: conformer-macaron, 2 layers, d_model 32, gates global, ")
    ckpt = load_checkpoint(out)
    assert ckpt.model_config.arch == "conformer-macaron" and ckpt.model_config.depthwise_kernel == 7
    assert ckpt.state_dict["conv.1.depthwise.weight"].shape == (32, 1, 7)
    for args, message in ((["--arch", "rnn"], "error: model config: arch must be one of transformer, conformer, "
                                                "conformer-macaron, got 'rnn'"),
                          (["--arch", "conformer", "--depthwise-kernel", "8"],
                           "error: model config: depthwise_kernel must be an odd positive integer, got 8")):
        bad = CliRunner().invoke(app, ["init", "-o", str(tmp_path / "bad.pt"), *args])
        assert bad.exit_code == 1 and bad.stderr.strip() == message
        assert not (tmp_path / "bad.pt").exists()


def test_init_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("needs permission to mount a tiny tmpfs (a full disk)")
    try:
        proc = subprocess.run([sys.executable, "-m", "i3d_edge", "init", "-o", str(full / "x.pt"), "--layers", "2"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"error: {full / 'x.pt'}: cannot write checkpoint: ")
        assert list(full.iterdir()) == []  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
