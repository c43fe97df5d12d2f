"""The PyTorch I3D model: gating semantics, padding invariance (every architecture), determinism,
length range, the Conformer convolution module's time mask and the macaron half step."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from i3d_edge.config import ModelConfig  # noqa: E402
from i3d_edge.errors import ConfigError  # noqa: E402
from i3d_edge.gating import local_budget, select_gates  # noqa: E402
from i3d_edge.models.checkpoint import random_checkpoint  # noqa: E402
from i3d_edge.models.i3d import MODULE_CLASSES, I3DModel, padding_mask  # noqa: E402
from i3d_edge.models.i3d import select_gates as torch_select_gates  # noqa: E402
from i3d_edge.models.train import gate_loss  # noqa: E402
from i3d_edge.module_kinds import MODULE_KINDS  # noqa: E402
from tests.conftest import small_config  # noqa: E402

GATES = ["global", "local", "none"]
ARCHS = ["transformer", "conformer", "conformer-macaron"]


def model_for(gates: str, layers: int = 3, seed: int = 0, arch: str = "transformer") -> I3DModel:
    return random_checkpoint(small_config(gates, layers, arch=arch), seed=seed).build_model()


@pytest.mark.parametrize("arch", ARCHS)
def test_gate_zero_is_exact_identity(arch):
    model = model_for("global", arch=arch)
    x = torch.randn(3, 20, 64)
    valid = torch.ones(3, 20, dtype=torch.bool)
    for training in (False, True):
        model.train(training)
        off = torch.zeros(3)
        for kind in model.cfg.layer_kinds:
            assert torch.equal(model.gated(x, valid, off, model.by_kind[kind][0]), x), kind
    model.eval()
    mixed = torch.tensor([1.0, 0.0, 1.0])
    for kind in model.cfg.layer_kinds:
        y = model.gated(x, valid, mixed, model.by_kind[kind][0])
        assert torch.equal(y[1], x[1]) and not torch.equal(y[0], x[0]), kind


def test_each_kind_has_its_pytorch_module_and_its_state_dict_names():
    """Every kind of the table is built by its own module class; a transformer's weights keep the names
    of the checkpoints trained before module kinds (mha.N..., ffn.N...), a conformer adds conv.N..."""
    assert set(MODULE_CLASSES) == set(MODULE_KINDS)
    names = {arch: {k.split(".")[0] for k in model_for("none", 2, arch=arch).state_dict()} for arch in ARCHS}
    assert names["transformer"] == {"frontend", "mha", "ffn", "head"}
    assert names["conformer"] == {"frontend", "mha", "conv", "ffn", "head"}
    assert names["conformer-macaron"] == {"frontend", "ffn_pre", "mha", "conv", "ffn_post", "head"}


def test_conformer_convolution_never_sees_padding():
    """Whatever the padded frames hold, the valid frames of the convolution module's output are the
    same, and equal those of the row alone (the depthwise kernel reaches 7 frames either side)."""
    model = model_for("none", 1, arch="conformer")
    conv = model.by_kind["conv"][0]
    x = torch.randn(2, 30, 64)
    lens = torch.tensor([30, 12])
    valid = padding_mask(lens, 30)
    with torch.no_grad():
        y = conv.residual(x, valid)
        noisy = x.clone()
        noisy[1, 12:] = 1e3 * torch.randn(18, 64)
        torch.testing.assert_close(conv.residual(noisy, valid)[1, :12], y[1, :12], atol=1e-5, rtol=0)
        alone = conv.residual(x[1:, :12], padding_mask(lens[1:], 12))
        torch.testing.assert_close(alone[0], y[1, :12], atol=1e-5, rtol=0)
        unmasked = conv.residual(noisy, torch.ones(2, 30, dtype=torch.bool))  # the mask is what protects them
        assert not torch.allclose(unmasked[1, :12], y[1, :12], atol=1e-3)


def test_macaron_feed_forward_is_a_half_step():
    model = model_for("none", 1, arch="conformer-macaron")
    x = torch.randn(2, 9, 64)
    with torch.no_grad():
        for kind in ("ffn_pre", "ffn_post"):
            module = model.by_kind[kind][0]
            torch.testing.assert_close(module.residual(x, None), x + 0.5 * module(x, None))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("gates", GATES)
def test_padded_batch_matches_single_utterance(gates, arch):
    model = model_for(gates, arch=arch)
    torch.manual_seed(1)
    lens = torch.tensor([400, 57, 7, 230])
    feats = torch.randn(4, 400, 80)
    with torch.no_grad():
        batch = model(feats, lens)
        for i, n in enumerate(lens.tolist()):
            one = model(feats[i: i + 1, :n], lens[i: i + 1])
            t = int(one.lens[0])
            assert int(batch.lens[i]) == t
            torch.testing.assert_close(batch.gate_probs[i], one.gate_probs[0], atol=1e-5, rtol=0)
            assert torch.equal(batch.gates[i], one.gates[0])
            torch.testing.assert_close(batch.log_probs[i, :t], one.log_probs[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("gates", GATES)
def test_eval_is_deterministic_and_training_is_stochastic(gates):
    model = model_for(gates)
    feats, lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    with torch.no_grad():
        a, b = model(feats, lens), model(feats, lens)
    assert torch.equal(a.log_probs, b.log_probs) and torch.equal(a.gates, b.gates)
    if gates != "none":
        model.train()
        draws = {tuple(model(feats, lens).gates.flatten().tolist()) for _ in range(8)}
        assert len(draws) > 1  # Gumbel noise makes training-time gates vary
        g = model(feats, lens).gates
        assert set(g.detach().unique().tolist()) <= {0.0, 1.0}  # hard in the forward pass


def test_straight_through_gradients_reach_gate_predictor():
    model = model_for("global")
    model.train()
    out = model(torch.randn(2, 100, 80), torch.tensor([100, 80]))
    (out.log_probs.mean() + gate_loss(out.gate_probs, 0.5)).backward()
    assert model.gate.mlp[2].weight.grad is not None and model.gate.mlp[2].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("seconds", [0.085, 1.0, 30.0, 120.0])
def test_lengths_from_shortest_valid_to_two_minutes(seconds):
    model = model_for("global", layers=2)
    frames = max(7, int(seconds * 100))
    with torch.no_grad():
        out = model(torch.randn(1, frames, 80), torch.tensor([frames]))
    assert int(out.lens[0]) == ((frames - 1) // 2 - 1) // 2 >= 1
    assert out.log_probs.shape[1] == int(out.lens[0])
    assert torch.isfinite(out.log_probs).all()


def test_thresholds_and_budget_control_depth():
    model = model_for("global", layers=4)
    feats, lens = torch.randn(3, 200, 80), torch.tensor([200, 150, 100])
    with torch.no_grad():
        assert model(feats, lens, threshold=0.0).gates.sum() >= model(feats, lens, threshold=0.9).gates.sum()
        assert bool(model(feats, lens, full_depth=True).gates.all())
        budget = model(feats, lens, threshold=0.0, max_modules=3).gates
    assert (budget.sum(1) <= 3).all()


def test_numpy_gate_selection_mirrors_torch():
    rng = np.random.default_rng(0)
    probs = rng.random((16, 12)).astype(np.float32)
    probs[0, :4] = 0.5  # ties
    for thr in (0.0, 0.5, 0.9):
        for k in (None, 0, 1, 5, 12):
            want = torch_select_gates(torch.from_numpy(probs), thr, k).numpy()
            np.testing.assert_array_equal(select_gates(probs, thr, k), want)


@pytest.mark.parametrize("arch", ARCHS)
def test_local_budget_counts_every_kind_in_execution_order(arch):
    """A local model's max_modules budget stops after that many modules, in execution order, whatever
    a layer's kinds: the modules run are the first ``max_modules`` of those the gates turn on."""
    model = model_for("local", 3, arch=arch)
    feats, lens = torch.randn(3, 200, 80), torch.tensor([200, 150, 100])
    with torch.no_grad():
        free = model(feats, lens, threshold=0.0).gates.bool()
        budget = model(feats, lens, threshold=0.0, max_modules=4).gates.bool()
    for row_free, row_budget in zip(free, budget, strict=True):
        chosen = torch.nonzero(row_free).flatten()[:4]
        assert torch.nonzero(row_budget).flatten().tolist() == chosen.tolist()


def test_local_budget_is_greedy_in_execution_order():
    executed = np.array([0, 2, 3])
    on = np.array([[True, True], [True, True], [False, True]])
    out = local_budget(on, executed, 3)
    np.testing.assert_array_equal(out, [[True, True], [True, False], [False, False]])
    np.testing.assert_array_equal(executed, [2, 3, 3])


@pytest.mark.parametrize("bad", [dict(n_heads=5), dict(gates="sometimes"), dict(dropout=1.5), dict(n_layers=0),
                                 dict(waveform=[]), dict(waveform="wav2vec2")])
def test_invalid_config_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="model config"):
        ModelConfig(**bad)
