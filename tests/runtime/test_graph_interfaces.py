"""Graphs whose interface does not fit the manifest's contract (fixed or wrong dimensions, dtype,
rank, a failing or lying probe run, non-finite output, a wrong gate or vocabulary width) are refused
when the bundle opens, not mid-run: the same one line from the API, ``i3d-edge transcribe`` and
``i3d-edge inspect``. Each replaced graph keeps a correct hash, so only the interface check can tell.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import sha256_file
from i3d_edge.runtime import Runtime
from tests.conftest import TINY, manifest_json, one_line_error, run_cli, save_manifest_json

onnx = pytest.importorskip("onnx", reason="building test graphs needs the [export] extra (onnx)")
from onnx import TensorProto, helper  # noqa: E402


def test_head_with_wrong_vocabulary_is_refused(make_bundle, tmp_path):
    good, other = make_bundle("global", 2), make_bundle("global", 2, vocab_size=40)
    bundle = tmp_path / "bundle"
    shutil.copytree(good, bundle)
    shutil.copy(other / "fp32" / "head.onnx", bundle / "fp32" / "head.onnx")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["fp32/head.onnx"]["sha256"] = sha256_file(bundle / "fp32" / "head.onnx")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="log_probs has width 40"):
        Runtime(bundle)


D = TINY["d_model"]


def _graph(nodes: list, inputs: list, outputs: list, inits: list | None = None) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits or []),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _x(shape: list, dtype: int = TensorProto.FLOAT, name: str = "x") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _ffn_fixed_time() -> onnx.ModelProto:
    return _graph([helper.make_node("Identity", ["x"], ["y"])], [_x(["b", 5, D])], [_x(["b", 5, D], name="y")])


def _ffn_double() -> onnx.ModelProto:
    return _graph([helper.make_node("Identity", ["x"], ["y"])], [_x(["b", "t", D], TensorProto.DOUBLE)],
                  [_x(["b", "t", D], TensorProto.DOUBLE, "y")])


def _ffn_rank_2() -> onnx.ModelProto:
    return _graph([helper.make_node("Identity", ["x"], ["y"])], [_x(["b", D])], [_x(["b", D], name="y")])


def _ffn_fails_when_run() -> onnx.ModelProto:  # declares dynamic shapes; reshapes to twice the length
    double = helper.make_tensor("double", TensorProto.FLOAT, [3], [1.0, 2.0, 1.0])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "double"], ["m"]),
             helper.make_node("Cast", ["m"], ["shape"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    return _graph(nodes, [_x(["b", "t", D])], [_x(["b", "t", D], name="y")], [double])


def _ffn_twice_as_long() -> onnx.ModelProto:  # runs, but y has twice the frames of x
    return _graph([helper.make_node("Concat", ["x", "x"], ["y"], axis=1)], [_x(["b", "t", D])],
                  [_x(["b", "t", D], name="y")])


def _ffn_non_finite() -> onnx.ModelProto:  # x / 0: what NaN or infinite weights give
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    return _graph([helper.make_node("Div", ["x", "zero"], ["y"])], [_x(["b", "t", D])],
                  [_x(["b", "t", D], name="y")], [zero])


def _gate_three_wide() -> onnx.ModelProto:  # (B, 3) probabilities where the model has 4 gates
    consts = [helper.make_tensor(n, TensorProto.INT64, [2], v) for n, v in
              (("starts", [0, 0]), ("ends", [1, 3]), ("axes", [1, 2]))]
    squeeze = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["s"]),
             helper.make_node("Squeeze", ["s", "one"], ["q"]),
             helper.make_node("Sigmoid", ["q"], ["gate_probs"])]
    return _graph(nodes, [_x(["b", "t", D]), _x(["b"], TensorProto.INT64, "x_lens")],
                  [_x(["b", "g"], name="gate_probs")], [*consts, squeeze])


# case -> (graph key, graph, fragment of the message)
GRAPHS: dict[str, tuple[str, Callable[[], onnx.ModelProto], str]] = {
    "fixed_time_length": ("layer00.ffn", _ffn_fixed_time, "dimension 1 of x is fixed at 5"),
    "float64": ("layer00.ffn", _ffn_double, "x is tensor(double), the contract needs tensor(float)"),
    "rank_2": ("layer00.ffn", _ffn_rank_2, "x has rank 2, the contract needs 3"),
    "fails_when_run": ("layer01.ffn", _ffn_fails_when_run, "fails a probe run on inputs of the contract's shapes"),
    "twice_as_long": ("layer01.ffn", _ffn_twice_as_long,
                      "a probe run gives y as float32 (2, 10, 32), the contract needs float32 (2, 5, 32)"),
    "non_finite_output": ("layer01.ffn", _ffn_non_finite, "a probe run gives non-finite y"),
    "gate_width": ("gate", _gate_three_wide, "gate_probs has width 3, the manifest's model needs 4"),
}


def _put_graph(bundle: Path, key: str, model: onnx.ModelProto) -> Path:
    """Replace graph ``key`` and fix up its hash: only the interface check can tell."""
    data = manifest_json(bundle)
    rel = data["variants"]["fp32"]["graphs"][key]
    onnx.save(model, bundle / rel)
    data["files"][rel] = {"sha256": sha256_file(bundle / rel), "bytes": (bundle / rel).stat().st_size}
    save_manifest_json(bundle, data)
    return bundle / rel


@pytest.mark.parametrize("case", list(GRAPHS))
def test_a_graph_that_does_not_fit_is_refused_when_the_bundle_opens(bundle, wav, case):
    key, build, fragment = GRAPHS[case]
    path = _put_graph(bundle, key, build())
    with pytest.raises(BundleError) as info:
        Runtime(bundle)
    message = str(info.value)
    assert "\n" not in message and fragment in message and message.startswith(str(path.resolve()))
    for command in (["transcribe", str(wav), "--model", str(bundle), "--format", "json"], ["inspect", str(bundle)]):
        assert one_line_error(run_cli(*command)) == f"error: {message}"  # the same line as the runtime's
