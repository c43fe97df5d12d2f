"""The table of module kinds: what config, the manifest contract and the weight bounds read from it,
and the transformer config written exactly as before module kinds existed."""

from __future__ import annotations

import json

import pytest

from i3d_edge.config import ModelConfig
from i3d_edge.errors import ConfigError
from i3d_edge.limits import min_weights
from i3d_edge.manifest import GRAPH_IO, role_of
from i3d_edge.module_kinds import ARCHITECTURES, MODULE_KINDS
from i3d_edge.runtime.runtime import DEFAULT_BUNDLE


def test_every_architecture_is_built_from_known_distinct_kinds():
    for arch, kinds in ARCHITECTURES.items():
        assert kinds and len(set(kinds)) == len(kinds), arch
        assert set(kinds) <= set(MODULE_KINDS), arch


def test_each_kind_is_a_graph_role_with_the_inputs_its_row_states():
    assert GRAPH_IO["mha"] == (("x", "x_lens"), ("y",))
    assert GRAPH_IO["conv"] == (("x", "x_lens"), ("y",))
    for kind in ("ffn", "ffn_pre", "ffn_post"):
        assert GRAPH_IO[kind] == (("x",), ("y",)), kind
    assert {k for k in GRAPH_IO if k not in ("frontend", "gate", "head", "monolithic")} == set(MODULE_KINDS)
    assert [MODULE_KINDS[k].residual_scale for k in ("mha", "ffn", "conv", "ffn_pre", "ffn_post")] == \
        [1.0, 1.0, 1.0, 0.5, 0.5]


def test_config_names_one_gate_and_one_graph_per_kind_per_layer():
    cfg = ModelConfig(n_layers=2, arch="conformer-macaron")
    assert cfg.layer_kinds == ("ffn_pre", "mha", "conv", "ffn_post")
    assert cfg.n_gates == 8
    assert cfg.module_names == ("layer00.ffn_pre", "layer00.mha", "layer00.conv", "layer00.ffn_post",
                                "layer01.ffn_pre", "layer01.mha", "layer01.conv", "layer01.ffn_post")
    assert [role_of(k) for k in cfg.module_names[:4]] == list(cfg.layer_kinds)
    plain = ModelConfig(n_layers=3)
    assert plain.module_names == ("layer00.mha", "layer00.ffn", "layer01.mha", "layer01.ffn", "layer02.mha",
                                  "layer02.ffn") and plain.n_gates == 6


def test_a_transformer_config_is_written_as_before():
    """No arch / depthwise_kernel keys for a transformer: bundles and checkpoints of transformers stay
    readable by releases before module kinds (whose readers refuse unknown fields); the embedded
    bundle's config (written before) reads as a transformer and writes back to the same keys."""
    embedded = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text(encoding="utf-8"))["model_config"]
    cfg = ModelConfig.from_dict(embedded)
    assert cfg.arch == "transformer" and cfg.layer_kinds == ("mha", "ffn")
    assert set(cfg.to_dict()) == set(embedded) | {"frontend", "waveform", "layout", "activation", "layer_norm_eps"}
    conformer = ModelConfig(arch="conformer", depthwise_kernel=31)
    assert conformer.to_dict()["arch"] == "conformer" and conformer.to_dict()["depthwise_kernel"] == 31
    assert ModelConfig.from_dict(conformer.to_dict()) == conformer
    odd = ModelConfig(depthwise_kernel=7)  # a transformer with a kernel set keeps it
    assert ModelConfig.from_dict(odd.to_dict()) == odd


@pytest.mark.parametrize(("bad", "message"), [
    (dict(arch="lstm"), "model config: arch must be one of transformer, conformer, conformer-macaron, got 'lstm'"),
    (dict(arch=["conformer"]), "model config: arch must be one of transformer, conformer, conformer-macaron, "
                               "got ['conformer']"),
    (dict(depthwise_kernel=4), "model config: depthwise_kernel must be an odd positive integer, got 4"),
    (dict(depthwise_kernel=0), "model config: depthwise_kernel must be an odd positive integer, got 0"),
    (dict(depthwise_kernel=True), "model config: depthwise_kernel must be an odd positive integer, got True"),
])
def test_bad_architecture_settings_are_refused(bad, message):
    with pytest.raises(ConfigError) as info:
        ModelConfig(**bad)
    assert str(info.value) == message


def test_weight_bounds_sum_the_layer_kinds():
    d, ff, v = 64, 128, 29
    transformer = ModelConfig(n_layers=2, d_model=d, n_heads=2, d_ff=ff, vocab_size=v)
    assert min_weights(transformer) == 2 * (4 * d * d + 2 * d * ff) + d * v  # the bound before module kinds
    conformer = ModelConfig(n_layers=2, d_model=d, n_heads=2, d_ff=ff, vocab_size=v, arch="conformer")
    assert min_weights(conformer) == 2 * (4 * d * d + 3 * d * d + 2 * d * ff) + d * v
    macaron = ModelConfig(n_layers=2, d_model=d, n_heads=2, d_ff=ff, vocab_size=v, arch="conformer-macaron")
    assert min_weights(macaron) == 2 * (4 * d * d + 3 * d * d + 4 * d * ff) + d * v
