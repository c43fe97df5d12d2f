"""A run directory's ``last.pt`` is untrusted when a run resumes: a training state of the wrong types
(a string learning rate, a module mask that is not 0/1, optimizer groups of another model) is one
line naming the file, exit status 1, no traceback."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import small_config

torch = pytest.importorskip("torch", reason="training needs the [export] extra")

from i3d_edge.cli import app  # noqa: E402
from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from i3d_edge.models.train import TrainConfig, train  # noqa: E402

SMALL = dict(max_steps=2, batch_frames=400, warmup_steps=1, gate_warmup_steps=1, eval_every=2, save_every=2)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, corpus) -> Path:
    run = tmp_path_factory.mktemp("run") / "run"
    train(run, [corpus], [corpus], small_config(), TrainConfig(**SMALL), log=lambda m: None)
    return run


def _config(field: str, value: object) -> Callable[[dict], None]:
    return lambda state: state["train_config"].__setitem__(field, value)


def _set(field: str, value: object) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(field, value)


def _other_groups(state: dict) -> None:
    groups = state["optimizer"]["param_groups"]
    state["optimizer"]["param_groups"] = [*groups, dict(groups[0], params=[10_000])]


# case -> (damage to train_state, the message after "PATH: cannot resume, ")
CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "string_learning_rate": (_config("lr", "fast"), "invalid train config ("),
    "list_batch_frames": (_config("batch_frames", [1]), "invalid train config ("),
    "string_step": (_set("step", "10"), "the checkpoint holds no training state"),
    "negative_step": (_set("step", -3), "the training state's step is not a count ('-3')"),
    "negative_epoch": (_set("epoch", -1), "the training state's epoch is not a count ('-1')"),
    "text_module_mask": (_set("module_mask", ["a", "b"]), "the training state's module_mask is not a list of 0/1"),
    "short_module_mask": (_set("module_mask", [1, 0]), "the module mask has 2 entries, the model 4 modules"),
    "optimizer_of_another_model": (_other_groups, "the optimizer state does not fit the model ("),
    "optimizer_not_a_mapping": (_set("optimizer", [1, 2]), "the training state's optimizer state is not a mapping"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_training_state_is_one_line(finished_run, corpus, tmp_path, case):
    damage, cause = CASES[case]
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    ckpt = load_checkpoint(run / "last.pt")
    damage(ckpt.train_state)
    save_checkpoint(run / "last.pt", dataclasses.replace(ckpt))
    result = CliRunner().invoke(app, ["train", "-o", str(run), "--train", str(corpus), "--dev", str(corpus),
                                      "--max-steps", "3"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == result.stderr.splitlines()[-1:], result.stderr  # the last line; progress notes before it
    assert errors[0].startswith(f"error: {run / 'last.pt'}: cannot resume, {cause}"), errors
    assert load_checkpoint(run / "last.pt").train_state["step"] == ckpt.train_state["step"]  # not overwritten
