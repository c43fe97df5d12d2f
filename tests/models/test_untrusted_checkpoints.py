"""Checkpoints that lie about their model (sizes beyond the ceilings, more units than their weights
hold, missing or non-finite weights): ``i3d-edge export`` refuses them in one line before
allocating, and leaves no bundle or staging folder.

Each case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``) and asserts the exit status, the single ``error:`` line naming the
file and the cause, and that no traceback is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY, one_line_error, run_cli

torch = pytest.importorskip("torch", reason="checkpoints need the [export] extra")


def _checkpoint(make_checkpoint, tmp_path: Path, change: Callable[[dict], None]) -> Path:
    data = torch.load(make_checkpoint("global", 2, **TINY), weights_only=True)
    change(data)
    path = tmp_path / "bad.pt"
    torch.save(data, path)
    return path


def _nan_weight(data: dict) -> None:
    name = next(k for k in data["state_dict"] if k.endswith("weight"))
    data["state_dict"][name][0] = float("nan")


CHECKPOINTS: dict[str, tuple[Callable[[dict], None], tuple[str, ...], tuple[str, ...]]] = {
    "n_layers_1e6": (lambda d: d["model_config"].__setitem__("n_layers", 10**6),
                     ("n_layers 1000000 is beyond the ceiling of 256",), ()),
    "d_ff_1e9": (lambda d: d["model_config"].__setitem__("d_ff", 10**9), ("d_ff 1000000000 is beyond the ceiling",),
                 ()),
    "d_ff_more_than_the_weights": (lambda d: d["model_config"].__setitem__("d_ff", 60_000),
                                   ("implies at least", "the state dict holds only"), ()),
    "hop_length_1": (lambda d: d["feature_config"].__setitem__("hop_length", 1), ("hop_length 1 gives",), ()),
    "missing_weight": (lambda d: d["state_dict"].pop("head.linear.weight"),
                       ("weights do not match the model config", "Missing key(s)", "head.linear.weight"), ()),
    "nan_weight_no_verify": (_nan_weight, ("has NaN or infinite values; refusing to export it",), ("--no-verify",)),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_checkpoint_that_lies_is_refused_before_allocating(make_checkpoint, tmp_path, case):
    change, fragments, extra = CHECKPOINTS[case]
    ckpt = _checkpoint(make_checkpoint, tmp_path, change)
    out = tmp_path / "out"
    line = one_line_error(run_cli("export", str(ckpt), "-o", str(out), *extra, memory_mb=3072), *fragments)
    assert str(ckpt) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]  # no bundle, no staging folder
