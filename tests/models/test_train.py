"""Training loop: runs, resumes, starts from another checkpoint, fits a time budget, prunes; a tiny
Conformer learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import small_config

torch = pytest.importorskip("torch", reason="training needs the [export] extra")

from i3d_edge.models.checkpoint import load_checkpoint  # noqa: E402
from i3d_edge.models.train import TrainConfig, fit_schedule, train  # noqa: E402


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=4, batch_frames=400, warmup_steps=2, gate_warmup_steps=2, eval_every=4, save_every=2)
    base.update(kw)
    return TrainConfig(**base)


def _log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "train.log").read_text().splitlines()]


def test_train_then_resume(tmp_path, corpus):
    run = tmp_path / "run"
    best = train(run, [corpus], [corpus], small_config(), _cfg(), log=lambda m: None)
    assert best.exists() and (run / "last.pt").exists()
    state = load_checkpoint(run / "last.pt").train_state
    assert state["step"] == 4
    assert _log_steps(run) == [1, 2, 3, 4]
    train(run, [corpus], [corpus], small_config(), _cfg(max_steps=6), log=lambda m: None)
    assert load_checkpoint(run / "last.pt").train_state["step"] == 6
    assert _log_steps(run) == [1, 2, 3, 4, 5, 6]  # resumed, not restarted


def test_init_copies_weights_and_statistics(tmp_path, corpus, make_checkpoint):
    src = load_checkpoint(make_checkpoint("global", 2))
    run = tmp_path / "run"
    train(run, [corpus], [corpus], small_config(layers=5), _cfg(max_steps=1, lr=1e-12),
          init=make_checkpoint("global", 2), log=lambda m: None)
    out = load_checkpoint(run / "last.pt")
    assert out.model_config == src.model_config  # dimensions come from the init checkpoint
    assert out.feature_config == src.feature_config
    assert out.train_state["init"].endswith(".pt")
    w = "head.proj.weight" if "head.proj.weight" in src.state_dict else next(iter(src.state_dict))
    torch.testing.assert_close(out.state_dict[w], src.state_dict[w], atol=1e-6, rtol=0)


def test_edge_silence_is_set_for_a_new_run_and_kept_on_resume(tmp_path, corpus, make_checkpoint):
    from i3d_edge.errors import ConfigError

    src = load_checkpoint(make_checkpoint("global", 2))
    assert src.feature_config.edge_silence == 0
    run = tmp_path / "run"
    train(run, [corpus], [corpus], small_config(), _cfg(max_steps=1), init=make_checkpoint("global", 2),
          edge_silence=0.15, log=lambda m: None)
    out = load_checkpoint(run / "last.pt")
    assert out.feature_config.edge_silence == 0.15  # carried to the bundle the checkpoint exports
    assert out.feature_config.mean == src.feature_config.mean  # the rest is the init's
    train(run, [corpus], [corpus], small_config(), _cfg(max_steps=2), edge_silence=0.15, log=lambda m: None)
    assert load_checkpoint(run / "last.pt").train_state["step"] == 2
    with pytest.raises(ConfigError, match=r"cannot resume with edge silence 0.3 s.*0.15 s"):
        train(run, [corpus], [corpus], small_config(), _cfg(max_steps=3), edge_silence=0.3, log=lambda m: None)
    fresh = tmp_path / "fresh"  # a new model: the statistics are those of the padded training audio
    train(fresh, [corpus], [corpus], small_config(), _cfg(max_steps=1), edge_silence=0.2, log=lambda m: None)
    assert load_checkpoint(fresh / "last.pt").feature_config.edge_silence == 0.2
    with pytest.raises(ConfigError, match="edge_silence"):
        train(tmp_path / "bad", [corpus], [corpus], small_config(), _cfg(max_steps=1), edge_silence=5.0,
              log=lambda m: None)


def test_module_mask_freezes_removed_modules(tmp_path, corpus, make_checkpoint):
    src = load_checkpoint(make_checkpoint("none", 2))
    run = tmp_path / "run"
    mask = [1, 0, 1, 1]  # layer 0's FFN removed
    train(run, [corpus], [corpus], small_config(), _cfg(max_steps=3), init=make_checkpoint("none", 2),
          module_mask=mask, log=lambda m: None)
    out = load_checkpoint(run / "last.pt")
    assert out.train_state["module_mask"] == mask
    removed = [k for k in src.state_dict if k.startswith("ffn.0.")]
    kept = [k for k in src.state_dict if k.startswith("ffn.1.") and k.endswith("weight")]
    assert removed and kept
    for k in removed:  # no gradient ever reaches a removed module
        torch.testing.assert_close(out.state_dict[k], src.state_dict[k], atol=0, rtol=0)
    assert any(not torch.equal(out.state_dict[k], src.state_dict[k]) for k in kept)


def test_module_mask_length_is_checked(tmp_path, corpus):
    from i3d_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="module mask"):
        train(tmp_path / "run", [corpus], [corpus], small_config(), _cfg(), module_mask=[1, 0],
              log=lambda m: None)


def testfit_schedule_scales_to_budget():
    cfg = TrainConfig(max_steps=1000, warmup_steps=100, gate_warmup_steps=400)
    fitted = fit_schedule(cfg, step=30, elapsed_s=3.0, budget_s=60.0)  # 10 steps/s, 57 s left
    assert 30 + 0.9 * 570 <= fitted.max_steps <= 30 + 570
    ratio = fitted.max_steps / cfg.max_steps
    assert fitted.gate_warmup_steps == round(400 * ratio)
    assert fitted.warmup_steps == round(100 * ratio)


def test_fit_to_time_rewrites_saved_schedule(tmp_path, corpus):
    run = tmp_path / "run"
    cfg = _cfg(max_steps=10_000, fit_to_time=True, eval_every=10_000, save_every=10_000)
    train(run, [corpus], [corpus], small_config(), cfg, max_minutes=0.1, log=lambda m: None)
    state = load_checkpoint(run / "last.pt").train_state
    saved = state["train_config"]
    assert saved["max_steps"] < 10_000  # rescaled from the measured step rate
    assert state["step"] <= saved["max_steps"]
    assert np.isfinite(json.loads((run / "train.log").read_text().splitlines()[-1])["loss"])


def testfit_schedule_never_moves_a_finished_warmup():
    cfg = TrainConfig(max_steps=1000, warmup_steps=100, gate_warmup_steps=400)
    # resumed at step 500 (both warm-ups over), 30 steps timed in 3 s, 600 s budget: a longer horizon
    fitted = fit_schedule(cfg, step=500, elapsed_s=3.0, budget_s=600.0, steps_timed=30)
    assert fitted.max_steps > 1000
    assert fitted.gate_warmup_steps == 400 and fitted.warmup_steps == 100  # gates stay on
    # a warm-up still ahead is rescaled but never moved before the current step
    early = fit_schedule(cfg, step=50, elapsed_s=50.0, budget_s=60.0, steps_timed=30)
    assert early.gate_warmup_steps >= 50 and early.max_steps < 1000


def test_a_tiny_conformer_learns(tmp_path, corpus):
    """60 steps on the six-utterance corpus: the CTC loss falls to a fifth of its start and greedy
    decoding of the (training) utterances gets most characters right (an untrained model emits
    blanks: CER 1); the gates have trained for the last 30 steps."""
    torch.set_num_threads(1)
    cfg = _cfg(max_steps=60, batch_frames=2000, warmup_steps=5, gate_warmup_steps=30, eval_every=60, save_every=60,
               lr=3e-3, specaugment=False)
    train(tmp_path / "run", [corpus], [corpus], small_config("global", 2, arch="conformer", dropout=0.0), cfg,
          log=lambda m: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert records[-1]["ctc"] < 0.2 * records[0]["ctc"], [r["ctc"] for r in records]
    assert records[-1]["dev"]["cer"] < 0.75
    assert records[-1]["gate_reg"] > 0  # the gate regulariser was on
    assert load_checkpoint(tmp_path / "run" / "best.pt").model_config.arch == "conformer"


def test_cli_no_specaugment_reaches_the_saved_schedule(tmp_path, corpus):
    from typer.testing import CliRunner

    from i3d_edge.cli import app

    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "-o", str(run), "--train", str(corpus), "--dev", str(corpus),
                                      "--layers", "2", "--d-model", "32", "--heads", "2", "--d-ff", "64",
                                      "--max-steps", "1", "--batch-frames", "400", "--warmup-steps", "1",
                                      "--gate-warmup-steps", "1", "--threads", "1", "--no-specaugment"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "last.pt").train_state["train_config"]["specaugment"] is False


def test_cli_train_arch_reaches_the_checkpoint(tmp_path, corpus):
    from typer.testing import CliRunner

    from i3d_edge.cli import app

    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "-o", str(run), "--train", str(corpus), "--dev", str(corpus),
                                      "--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff", "64",
                                      "--arch", "conformer", "--depthwise-kernel", "5", "--max-steps", "1",
                                      "--batch-frames", "400", "--warmup-steps", "1", "--gate-warmup-steps", "1",
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    cfg = load_checkpoint(run / "last.pt").model_config
    assert (cfg.arch, cfg.depthwise_kernel, cfg.module_names) == ("conformer", 5, ("layer00.mha", "layer00.conv",
                                                                                  "layer00.ffn"))
