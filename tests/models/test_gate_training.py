"""Gate training: the objectives, the temperature schedule, gate-only and re-initialised runs, and
proof on a synthetic task that the gating machinery learns input-dependent decisions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import small_config

torch = pytest.importorskip("torch", reason="training needs the [export] extra")

from i3d_edge.errors import ConfigError  # noqa: E402
from i3d_edge.models.checkpoint import load_checkpoint  # noqa: E402
from i3d_edge.models.i3d import I3DModel  # noqa: E402
from i3d_edge.models.train import (  # noqa: E402
    TrainConfig,
    gate_diversity,
    gate_loss,
    gate_parameters,
    reset_gate_predictor,
    temperature_at,
    train,
)

PROBS = torch.tensor([[0.9, 0.9, 0.9, 0.9],   # utterance 0 runs 90% of the modules in expectation
                      [0.1, 0.1, 0.3, 0.1]])  # utterance 1 runs 15%


def test_gate_objectives_by_hand():
    # batch mean = (0.9 + 0.15) / 2 = 0.525
    assert gate_loss(PROBS, 0.5, "target").item() == pytest.approx(0.025)
    assert gate_loss(PROBS, 0.6, "target").item() == pytest.approx(0.075)
    assert gate_loss(PROBS, 0.5, "expected").item() == pytest.approx(0.525)  # the target is ignored
    assert gate_loss(PROBS, None, "target").item() == pytest.approx(0.525)  # target None: minimise
    # utterance budget 0.5: utterance 0 pays 0.4, utterance 1 pays nothing -> mean 0.2
    assert gate_loss(PROBS, 0.5, "utterance").item() == pytest.approx(0.2)
    assert gate_loss(PROBS, 0.95, "utterance").item() == pytest.approx(0.0)


def test_utterance_objective_only_pushes_utterances_over_budget():
    probs = PROBS.clone().requires_grad_(True)
    gate_loss(probs, 0.5, "utterance").backward()
    assert probs.grad is not None
    assert torch.all(probs.grad[0] > 0) and torch.all(probs.grad[1] == 0)


def test_expected_objective_pushes_every_gate_equally():
    probs = PROBS.clone().requires_grad_(True)
    gate_loss(probs, None, "expected").backward()
    assert probs.grad is not None
    assert torch.allclose(probs.grad, torch.full_like(probs, 1 / probs.numel()))


def test_gate_diversity_by_hand():
    # per-gate variances across the two utterances: 0.16, 0.16, 0.09, 0.16 -> mean 0.1425
    assert gate_diversity(PROBS).item() == pytest.approx(0.1425)
    static = torch.tensor([[0.9, 0.1, 0.7], [0.9, 0.1, 0.7], [0.9, 0.1, 0.7]])  # one fixed subset
    assert gate_diversity(static).item() == 0.0
    assert gate_diversity(PROBS[:1]).item() == 0.0  # a single utterance has no spread
    split = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # each gate open for half the batch: the maximum
    assert gate_diversity(split).item() == pytest.approx(0.25)


def test_gate_diversity_gradient_pushes_gates_apart():
    probs = torch.tensor([[0.6, 0.5], [0.4, 0.5]], requires_grad=True)
    (-gate_diversity(probs)).backward()  # the training loss subtracts the reward
    assert probs.grad is not None
    assert probs.grad[0, 0] < 0 < probs.grad[1, 0]  # descent raises the higher, lowers the lower
    assert torch.all(probs.grad[:, 1] == 0)  # equal probabilities: no push either way


@pytest.mark.parametrize("bad", [dict(gate_diversity=-1.0), dict(gate_objective="mean"),
                                 dict(gate_objective="utterance", gate_target=None),
                                 dict(train_only="frontend"), dict(temperature=0.0), dict(temperature_end=-1.0)])
def test_gate_options_are_validated(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_temperature_schedule_is_geometric_after_the_gate_warmup():
    cfg = TrainConfig(temperature=2.0, temperature_end=0.5, gate_warmup_steps=100, max_steps=300)
    assert temperature_at(0, cfg) == pytest.approx(2.0)
    assert temperature_at(100, cfg) == pytest.approx(2.0)
    assert temperature_at(200, cfg) == pytest.approx(1.0)  # halfway: sqrt(2.0 * 0.5)
    assert temperature_at(300, cfg) == pytest.approx(0.5)
    assert temperature_at(10_000, cfg) == pytest.approx(0.5)
    assert temperature_at(200, TrainConfig(temperature=1.5)) == 1.5  # no end: constant


@pytest.mark.parametrize("gates", ["global", "local"])
def test_reset_gate_predictor_opens_every_gate_for_every_input(gates):
    torch.manual_seed(0)
    model = I3DModel(small_config(gates, layers=3)).eval()
    with torch.no_grad():
        for p in gate_parameters(model):  # saturate: a predictor that learned static gates
            p.normal_(0, 5.0)
        reset_gate_predictor(model, open_bias=2.0)
        x = torch.randn(3, 60, 80)
        out = model(x, torch.tensor([60, 45, 30]))
    expected = torch.sigmoid(torch.tensor(2.0))
    assert torch.allclose(out.gate_probs, torch.full_like(out.gate_probs, float(expected)))
    assert int(out.gates.sum()) == 3 * 6


def test_gate_only_training_changes_only_the_gate_predictor(tmp_path, corpus, make_checkpoint):
    src = make_checkpoint("global", 2)
    before = load_checkpoint(src).state_dict
    cfg = TrainConfig(max_steps=4, batch_frames=400, warmup_steps=1, gate_warmup_steps=0, eval_every=4,
                      save_every=2, lr=1e-2, train_only="gates", reinit_gates=True, gate_objective="expected",
                      gate_lambda=1.0)
    train(tmp_path / "run", [corpus], [corpus], small_config(), cfg, init=src, log=lambda m: None)
    after = load_checkpoint(tmp_path / "run" / "last.pt").state_dict
    gate_keys = [k for k in before if k.startswith("gate.")]
    assert gate_keys
    for key in before:
        if key in gate_keys:
            continue
        assert torch.equal(before[key], after[key]), f"{key} changed in a gate-only run"
    assert not torch.equal(before["gate.mlp.2.bias"], after["gate.mlp.2.bias"])
    # re-initialised: output weights started at zero and moved only a few Adam steps (lr 1e-2)
    assert float(after["gate.mlp.2.weight"].abs().max()) < 0.1


def test_reinit_gates_needs_a_gated_model(tmp_path, corpus, make_checkpoint):
    cfg = TrainConfig(max_steps=1, batch_frames=400, reinit_gates=True)
    with pytest.raises(ConfigError, match="gate predictor"):
        train(tmp_path / "run", [corpus], [corpus], small_config("none"), cfg, init=make_checkpoint("none", 2),
              log=lambda m: None)


def test_gates_learn_to_depend_on_the_input():
    """A synthetic task, independent of speech: inputs of class A need layer 0's FFN, inputs of
    class B need no module at all, and nobody needs the MHA. Only the (re-initialised) gate
    predictor is trained, with straight-through Gumbel gates in the model's own training forward
    and the paper's expected-compute objective. Afterwards the FFN gate must be open for A and
    closed for B, and the MHA gate closed for both."""
    torch.manual_seed(0)
    model = I3DModel(small_config("global", layers=1, dropout=0.0))
    reset_gate_predictor(model)
    params = gate_parameters(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels = torch.from_numpy(rng.integers(0, 2, n)).bool()  # True: class A
        x = torch.from_numpy(rng.normal(0.0, 1.0, (n, 40, 80)).astype(np.float32))
        x[labels, :, :40] += 2.0  # class A: energy in the low bands
        x[~labels, :, 40:] += 2.0  # class B: energy in the high bands
        return x, torch.full((n,), 40, dtype=torch.long), labels

    def targets(x: torch.Tensor, lens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            ffn_only = model(x, lens, full_depth=True, module_mask=torch.tensor([0.0, 1.0])).log_probs
            nothing = model(x, lens, full_depth=True, module_mask=torch.tensor([0.0, 0.0])).log_probs
        model.train()
        return torch.where(labels[:, None, None], ffn_only, nothing)

    x0, l0, y0 = batch(64)
    t0 = targets(x0, l0, y0)
    model.eval()
    with torch.no_grad():
        scale = float(((model(x0, l0, full_depth=True).log_probs - t0) ** 2).mean())  # cost of a wrong gate
    assert scale > 0
    opt = torch.optim.Adam(params, lr=2e-2)
    model.train()
    for _ in range(150):
        x, lens, labels = batch(16)
        target = targets(x, lens, labels)
        out = model(x, lens)  # Gumbel-sigmoid + straight-through gates
        loss = ((out.log_probs - target) ** 2).mean() / scale + 0.2 * gate_loss(out.gate_probs, None, "expected")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, lens, labels = batch(200)
    with torch.no_grad():
        probs = model(x, lens).gate_probs  # (B, 2): [mha, ffn]
    assert float(probs[labels, 1].min()) > 0.7, "the FFN gate should be open for class A"
    assert float(probs[~labels, 1].max()) < 0.3, "the FFN gate should be closed for class B"
    assert float(probs[:, 0].max()) < 0.3, "the MHA gate is never needed"


def test_resuming_from_a_checkpoint_without_training_state_is_one_clear_error(tmp_path, corpus, make_checkpoint):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(make_checkpoint("global", 2), run / "last.pt")  # weights only: no train_config, no step
    with pytest.raises(ConfigError, match=r"cannot resume.*no training state"):
        train(run, [corpus], [corpus], small_config(), TrainConfig(max_steps=1, batch_frames=400), log=lambda m: None)
