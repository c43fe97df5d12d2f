"""``export_bundle`` / ``i3d-edge export`` / ``i3d-edge inspect``: graphs, manifest, parity, int8,
monolithic, atomic output and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="export needs the [export] extra (onnx)")
torch = pytest.importorskip("torch", reason="export needs the [export] extra (torch)")

import onnxruntime as ort  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import i3d_edge.cli.export  # noqa: E402, F401  (registers the commands)
from i3d_edge.cli import app  # noqa: E402
from i3d_edge.errors import CheckpointError, ExportError  # noqa: E402
from i3d_edge.export import bundle as bundle_mod  # noqa: E402
from i3d_edge.export import export_bundle  # noqa: E402
from i3d_edge.export.verify import diverged_rows  # noqa: E402
from i3d_edge.manifest import GRAPH_IO, MANIFEST_NAME, load_manifest, role_of, sha256_file  # noqa: E402
from i3d_edge.models.checkpoint import load_checkpoint, random_checkpoint, save_checkpoint  # noqa: E402
from i3d_edge.models.i3d import padding_mask  # noqa: E402
from tests.conftest import small_config  # noqa: E402

FP32_ATOL = 1e-4  # exported fp32 graphs vs torch (CTC log-probs, activations of unit scale)
LONG_ATOL = 5e-3  # 10-minute input: sinusoid implementations differ in the last bits at positions ~15k
SHAPES = ["global", "local", "none"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Torch references here are tiny ops; one thread avoids OpenMP spinning on a busy CPU."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def cli(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def leftovers(parent: Path, name: str) -> list[str]:
    """Staging or moved-aside directories of bundle ``name`` left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def features(lens: list[int], n_mels: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((len(lens), max(lens), n_mels)).astype(np.float32)  # (B, T, F)
    return feats, np.array(lens, dtype=np.int64)


# ---------------------------------------------------------------------------- bundle contract
@pytest.mark.parametrize("layers", [2, 12])
@pytest.mark.parametrize("gates", SHAPES)
def test_bundle_is_verified_and_follows_the_contract(make_bundle, gates, layers):
    root = make_bundle(gates, layers)
    manifest = load_manifest(root)  # round-trips through the reader's validation
    data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest.to_dict() == data  # the typed manifest writes back exactly what the export wrote
    graphs = manifest.variant("fp32").graphs
    n_gate_graphs = {"global": 1, "local": layers, "none": 0}[gates]
    assert len([k for k in graphs if role_of(k) in ("mha", "ffn")]) == 2 * layers
    assert len(graphs) == 2 * layers + 2 + n_gate_graphs
    assert [k for k in graphs if role_of(k) in ("mha", "ffn")] == list(manifest.modules)
    assert data["default_variant"] == "fp32" and set(data["variants"]) == {"fp32"}
    assert manifest.threshold == manifest.model_config.gate_threshold
    # verification ran and passed within tolerance, end to end through the runtime
    report = data["verification"]
    assert report["status"] == "passed"
    fp32 = report["variants"]["fp32"]
    assert set(fp32["graphs"]) == set(graphs)
    assert fp32["end_to_end_max_abs_diff"] <= FP32_ATOL
    assert fp32["gate_agreement"] == 1.0
    expected_settings = {"default", "full_depth"} | ({"threshold=0.0", "threshold=0.9"} if gates != "none" else set())
    assert set(fp32["end_to_end"]) == expected_settings
    # every listed file is hashed; every file is listed; nothing but JSON and ONNX
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(data["files"]) | {MANIFEST_NAME}
    for rel, entry in data["files"].items():
        assert entry == {"sha256": sha256_file(root / rel), "bytes": (root / rel).stat().st_size}
        assert rel.endswith(".onnx") and (root / rel).read_bytes()[:1] != b"\x80"  # no pickle
    # every graph loads in onnxruntime with the contract's names and dynamic batch/time axes
    for key, rel in graphs.items():
        session = ort.InferenceSession(str(root / rel), providers=["CPUExecutionProvider"])
        inputs, outputs = GRAPH_IO[role_of(key)]
        assert tuple(i.name for i in session.get_inputs()) == inputs
        assert tuple(o.name for o in session.get_outputs()) == outputs
        for tensor in session.get_inputs():
            assert isinstance(tensor.shape[0], str), (key, tensor.name, tensor.shape)  # batch
            if len(tensor.shape) == 3:
                assert isinstance(tensor.shape[1], str), (key, tensor.name, tensor.shape)  # time
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["role"] == role_of(key) and meta["module"] == key and meta["variant"] == "fp32"
        assert json.loads(meta["model_config"]) == data["model_config"]
        assert meta["i3d_edge_version"] and meta["opset"] == "17"
        if key.startswith("layer"):
            assert meta["layer"] == str(int(key[5:7]))
        if key in ("frontend", "head"):  # self-describing graphs
            assert json.loads(meta["tokens"]) == data["tokens"]
            assert json.loads(meta["feature_config"]) == data["feature_config"]
            assert json.loads(meta["gates"]) == data["gates"]


def test_manifest_fields(make_checkpoint, tmp_path):
    ckpt = load_checkpoint(make_checkpoint("local", 2))
    fc = ckpt.feature_config
    ckpt.feature_config = type(fc)(**{**fc.to_dict(), "mean": [0.5] * 80, "std": [2.0] * 80})
    ckpt.model_config = small_config("local", 2, gate_threshold=0.3)
    manifest = export_bundle(ckpt, tmp_path / "b", verify=False, opset=18, simplify=False)
    assert manifest == json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    assert manifest["format"] == "i3d-edge-bundle" and manifest["version"] == 1
    assert manifest["feature_config"]["mean"] == [0.5] * 80 and manifest["feature_config"]["std"] == [2.0] * 80
    modules = list(ckpt.model_config.module_names)
    assert manifest["gates"] == {"predictor": "local", "threshold": 0.3, "modules": modules}
    assert manifest["tokens"] == list(ckpt.tokens.tokens)
    prov = manifest["provenance"]
    assert prov["opset"] == 18 and prov["simplified"] is False and prov["onnxsim"] is None
    assert prov["torch"] == torch.__version__ and prov["onnxruntime"] == ort.__version__
    assert prov["source_checkpoint"] == {"path": None, "sha256": None} and prov["created_utc"].endswith("Z")
    assert manifest["verification"] == {"status": "skipped"}
    frontend = onnx.load(tmp_path / "b" / "fp32" / "frontend.onnx")
    assert {o.version for o in frontend.opset_import if o.domain in ("", "ai.onnx")} == {18}


def test_source_checkpoint_is_hashed(make_bundle, make_checkpoint):
    prov = load_manifest(make_bundle("global", 2)).provenance
    path = make_checkpoint("global", 2)
    assert prov["source_checkpoint"] == {"path": path.name, "sha256": sha256_file(path)}


def test_unsimplified_graphs_verify(make_checkpoint, tmp_path):
    manifest = export_bundle(make_checkpoint("global", 2), tmp_path / "b", simplify=False)
    assert manifest["verification"]["variants"]["fp32"]["end_to_end_max_abs_diff"] <= FP32_ATOL


# ---------------------------------------------------------------------------- lengths
def test_ten_minute_input_runs_through_frontend_and_modules(make_bundle, make_checkpoint):
    """60,000 feature frames (10 minutes) through graphs traced on 64 frames: no re-export."""
    root = make_bundle("global", 2)
    model = load_checkpoint(make_checkpoint("global", 2)).build_model()

    def run(key: str, **feeds: np.ndarray) -> list[np.ndarray]:
        session = ort.InferenceSession(str(root / "fp32" / f"{key}.onnx"), providers=["CPUExecutionProvider"])
        return session.run(None, feeds)

    feats, lens = features([60_000])
    x, x_lens = run("frontend", features=feats, features_lens=lens)  # (1, 14999, D)
    with torch.no_grad():
        tx, tx_lens = model.frontend(torch.from_numpy(feats), torch.from_numpy(lens))
    assert x.shape == tuple(tx.shape) and x_lens.tolist() == tx_lens.tolist() == [14_999]
    np.testing.assert_allclose(x, tx.numpy(), rtol=0, atol=LONG_ATOL)
    (y,) = run("layer00.ffn", x=x)
    (probs,) = run("gate", x=x, x_lens=x_lens)
    (log_probs,) = run("head", encoder_out=y)
    with torch.no_grad():
        ty = torch.from_numpy(x) + model.ffn[0](torch.from_numpy(x))
    np.testing.assert_allclose(y, ty.numpy(), rtol=0, atol=FP32_ATOL * 10)
    assert probs.shape == (1, 4) and log_probs.shape == (1, 14_999, 29) and np.isfinite(log_probs).all()
    # attention at 2 minutes (T' = 2,999), a padded batch with a different batch size
    xa = np.concatenate([x[:, :2999], x[:, :2999]])  # (2, 2999, D)
    xa_lens = np.array([2999, 1700])
    (ya,) = run("layer00.mha", x=xa, x_lens=xa_lens)
    with torch.no_grad():
        txa = torch.from_numpy(xa)
        tya = txa + model.mha[0](txa, padding_mask(torch.from_numpy(xa_lens), 2999))
    np.testing.assert_allclose(ya[1, :1700], tya.numpy()[1, :1700], rtol=0, atol=FP32_ATOL * 10)
    np.testing.assert_allclose(ya[0], tya.numpy()[0], rtol=0, atol=FP32_ATOL * 10)


# ---------------------------------------------------------------------------- int8 / monolithic
def test_int8_variant_beside_fp32(make_bundle):
    root = make_bundle("global", 2, quantize="int8")
    manifest = load_manifest(root)
    assert manifest.default_variant == "fp32" and set(manifest.variants) == {"fp32", "int8"}
    fp32, int8 = manifest.variant("fp32"), manifest.variant("int8")
    assert fp32.quantization is None
    assert int8.quantization["weight_type"] == "int8" and int8.quantization["method"] == "dynamic"
    assert set(int8.graphs) == set(fp32.graphs)
    assert all(rel == f"int8/{Path(fp32.graphs[k]).name}" for k, rel in int8.graphs.items())
    size = {name: sum(manifest.files[rel]["bytes"] for rel in variant.graphs.values())
            for name, variant in manifest.variants.items()}
    assert size["int8"] < 0.6 * size["fp32"]
    for key in ("layer00.mha", "layer00.ffn", "frontend"):
        assert manifest.files[int8.graphs[key]]["bytes"] < 0.6 * manifest.files[fp32.graphs[key]]["bytes"]
        assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeLinear")
                   for n in onnx.load(root / int8.graphs[key]).graph.node)
    meta = ort.InferenceSession(str(root / int8.graphs["layer00.ffn"])).get_modelmeta().custom_metadata_map
    assert meta["variant"] == "int8" and json.loads(meta["quantization"]) == int8.quantization
    report = manifest.verification["variants"]["int8"]
    assert 0 < report["end_to_end_max_abs_diff"] < 0.5  # quantised, but sane
    assert report["gate_agreement"] >= 0.9
    assert all(np.isfinite(v) for v in report["graphs"].values())


def test_monolithic_graph_matches_torch_full_depth(make_bundle, make_checkpoint):
    root = make_bundle("local", 2, monolithic=True)
    assert load_manifest(root).variant("fp32").graphs["monolithic"] == "fp32/monolithic.onnx"
    model = load_checkpoint(make_checkpoint("local", 2)).build_model()
    session = ort.InferenceSession(str(root / "fp32" / "monolithic.onnx"), providers=["CPUExecutionProvider"])
    feats, lens = features([7, 420, 1333], seed=3)
    log_probs, out_lens = session.run(None, {"features": feats, "features_lens": lens})
    with torch.no_grad():
        ref = model(torch.from_numpy(feats), torch.from_numpy(lens), full_depth=True)
    assert out_lens.tolist() == ref.lens.tolist()
    for b, n in enumerate(out_lens):
        np.testing.assert_allclose(log_probs[b, :n], ref.log_probs[b, :n].numpy(), rtol=0, atol=FP32_ATOL)


# ---------------------------------------------------------------------------- inspect
def test_inspect_json_reports_the_12_layer_global_bundle(make_bundle):
    root = make_bundle("global", 12)
    result = cli("inspect", root, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    graphs = info["variants"]["fp32"]["graphs"]
    roles = [g["role"] for g in graphs]
    assert roles.count("mha") == roles.count("ffn") == 12 and len(graphs) == 27
    assert {"frontend", "gate", "head"} <= set(roles)
    assert [g["key"] for g in graphs if g["role"] in ("mha", "ffn")] == info["gates"]["modules"]
    assert info["gates"]["predictor"] == "global" and info["gates"]["threshold"] == 0.5
    for g in graphs:
        assert g["bytes"] > 0 and g["params"] > 0 and g["opset"] == 17
        assert (tuple(g["inputs"]), tuple(g["outputs"])) == GRAPH_IO[g["role"]]
        assert g["metadata"]["role"] == g["role"]
    assert info["variants"]["fp32"]["quantization"] is None and info["variants"]["fp32"]["default"]
    assert info["provenance"]["opset"] == 17 and info["verification"]["status"] == "passed"


def test_inspect_text(make_bundle):
    result = cli("inspect", make_bundle("global", 2, quantize="int8"))
    assert result.exit_code == 0, result.output
    for fragment in ("global predictor, threshold 0.5", "graphs [fp32]", "graphs [int8]", "layer01.ffn",
                     "weight_type int8", "verification  passed", "provenance", "metadata",
                     # the rule verification applied (it scales with the reference: a bare 0.0001 misled)
                     "fp32 within 0.0001 x max(1, largest reference value) of torch"):
        assert fragment in result.stdout


def test_inspect_needs_no_torch(make_bundle, block_torch):
    from i3d_edge.bundle.inspection import inspect_bundle

    assert inspect_bundle(make_bundle("global", 2))["variants"]["fp32"]["graphs"]


@pytest.mark.parametrize("damage", ["missing", "no-manifest", "tampered"])
def test_inspect_refuses_a_bad_bundle(make_bundle, tmp_path, damage):
    root = tmp_path / "b"
    if damage != "missing":
        shutil.copytree(make_bundle("global", 2), root)
        if damage == "no-manifest":
            (root / MANIFEST_NAME).unlink()
        else:
            with open(root / "fp32" / "head.onnx", "ab") as fh:
                fh.write(b"\0")
    assert_one_line_error(cli("inspect", root), str(root))


# ---------------------------------------------------------------------------- CLI export
def test_cli_export_prints_a_summary(make_checkpoint, tmp_path):
    result = cli("export", make_checkpoint("none", 2), "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert "fp32: 6 graphs" in result.stdout and "verification: passed" in result.stdout
    assert load_manifest(tmp_path / "b").predictor == "none"


def test_cli_modules_import_no_torch():
    code = "import sys, i3d_edge.cli.export, i3d_edge.export; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_cli_error_in_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "export", tmp_path / "nope.pt", "-o", tmp_path / "b"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {tmp_path / 'nope.pt'}: no such file\n"


class _Payload:
    """Unpickling this would call open(marker, "w") and create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_checkpoint(kind: str, path: Path, good: Path) -> None:
    if kind == "corrupt":
        path.write_bytes(good.read_bytes()[:3000])
    elif kind.startswith("garbage"):
        path.write_bytes(np.random.default_rng(int(kind.split("-")[1])).bytes(2048))
    elif kind == "not-i3d":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "version":
        data = torch.load(good, weights_only=True)
        torch.save({**data, "version": 99}, path)
    elif kind == "pickle":
        torch.save({"format": "i3d-edge-checkpoint", "payload": _Payload(path.with_suffix(".pwned"))}, path)


@pytest.mark.parametrize(("kind", "fragment"), [
    ("missing", "no such file"),
    ("corrupt", "corrupt"),
    ("garbage-0", "corrupt"),
    ("garbage-17", "corrupt"),  # torch.load raises IndexError/KeyError on these bytes
    ("not-i3d", "not an i3d-edge checkpoint"),
    ("version", "unsupported checkpoint version 99"),
    ("pickle", "refused"),
])
def test_bad_checkpoints_are_one_line_errors(make_checkpoint, tmp_path, kind, fragment):
    ckpt = tmp_path / "ckpt.pt"
    _bad_checkpoint(kind, ckpt, make_checkpoint("global", 2))
    result = cli("export", ckpt, "-o", tmp_path / "out")
    assert_one_line_error(result, str(ckpt), fragment)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path, "out") == []
    assert not ckpt.with_suffix(".pwned").exists()  # the pickled payload never ran
    with pytest.raises(CheckpointError):
        export_bundle(ckpt, tmp_path / "out")


def test_unwritable_output_is_a_one_line_error(make_checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_one_line_error(cli("export", make_checkpoint("global", 2), "-o", blocker / "sub" / "b"),
                          str(blocker / "sub" / "b"), "cannot create")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_parent_is_a_one_line_error(make_checkpoint, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o555)
    try:
        assert_one_line_error(cli("export", make_checkpoint("global", 2), "-o", parent / "b"), "Permission denied")
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize(("kwargs", "fragment"), [({"opset": 13}, "unsupported opset 13"),
                                                  ({"quantize": "int4"}, "unsupported quantisation")])
def test_bad_options(make_checkpoint, tmp_path, kwargs, fragment):
    with pytest.raises(ExportError, match=fragment):
        export_bundle(make_checkpoint("global", 2), tmp_path / "b", **kwargs)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- atomic output
def test_existing_output_is_refused_without_force(make_checkpoint, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_one_line_error(cli("export", make_checkpoint("global", 2), "-o", out), str(out), "--force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # --force replaces bundles only, never an unrelated directory
    with pytest.raises(ExportError, match="not an i3d-edge bundle"):
        export_bundle(make_checkpoint("global", 2), out, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and leftovers(tmp_path, "b") == []


def test_force_replaces_a_bundle_once_the_new_one_is_complete(make_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "b"
    export_bundle(make_checkpoint("global", 2), out, verify=False)
    first = (out / MANIFEST_NAME).read_bytes()
    # a failing re-export leaves the old bundle exactly as it was
    monkeypatch.setattr(bundle_mod, "verify_bundle", _raise(ExportError("verification failed: injected")))
    with pytest.raises(ExportError, match="injected"):
        export_bundle(make_checkpoint("local", 2), out, force=True)
    assert (out / MANIFEST_NAME).read_bytes() == first and leftovers(tmp_path, "b") == []
    monkeypatch.undo()
    export_bundle(make_checkpoint("local", 2), out, force=True, verify=False)
    assert load_manifest(out).predictor == "local" and leftovers(tmp_path, "b") == []


def _raise(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ExportError("boom"), OSError(28, "No space left on device")])
def test_interrupted_export_leaves_nothing(make_checkpoint, tmp_path, monkeypatch, exc):
    """An error or Ctrl-C after some graphs are written removes the staging directory and the
    parent directories the export created."""
    real = bundle_mod.quantize_int8
    calls = []

    def quantize_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle_mod, "quantize_int8", quantize_then_fail)
    out = tmp_path / "new" / "deeper" / "b"
    with pytest.raises(type(exc) if not isinstance(exc, OSError) else ExportError):
        export_bundle(make_checkpoint("global", 2), out, quantize="int8", verify=False)
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_graph_fails_verification_and_leaves_nothing(make_checkpoint, tmp_path, monkeypatch):
    real = bundle_mod.export_graph

    def perturbed(spec, *args, **kwargs):
        graph = real(spec, *args, **kwargs)
        if spec.key == "layer01.ffn":
            init = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
            weights = onnx.numpy_helper.to_array(init) * np.float32(1.01)  # 1% off
            init.CopyFrom(onnx.numpy_helper.from_array(weights, init.name))
        return graph

    monkeypatch.setattr(bundle_mod, "export_graph", perturbed)
    with pytest.raises(ExportError, match=r"verification failed: fp32 graph layer01\.ffn differs from torch"):
        export_bundle(make_checkpoint("global", 2), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- gate ties
def test_gate_ties_are_not_failures():
    probs = np.array([[0.5 + 5e-6, 0.9], [0.2, 0.5 - 2e-6], [0.7, 0.1]], dtype=np.float32)  # (B, 2)
    want = probs > 0.5
    got = want.copy()
    got[0, 0] = ~got[0, 0]  # within the tie margin
    got[1, 1] = ~got[1, 1]  # within the tie margin
    got[2, 0] = ~got[2, 0]  # a real difference
    tied, failed, n = diverged_rows(want, got, probs, 0.5, local=False)
    assert tied.tolist() == [True, True, False] and failed.tolist() == [False, False, True] and n == 3


def test_export_accepts_a_loaded_checkpoint_and_path_like(tmp_path):
    ckpt = random_checkpoint(small_config("global", 1), seed=3)
    save_checkpoint(tmp_path / "c.pt", ckpt)
    a = export_bundle(ckpt, tmp_path / "a", verify=False)
    b = export_bundle(str(tmp_path / "c.pt"), str(tmp_path / "b"), verify=False)
    assert a["files"].keys() == b["files"].keys()
    assert a["files"]["fp32/head.onnx"]["sha256"] == b["files"]["fp32/head.onnx"]["sha256"]  # deterministic


def test_small_gate_probabilities_keep_their_relative_precision(make_checkpoint, tmp_path):
    """onnxruntime's Sigmoid returns 0 below logits of about -18; gate graphs must not, or
    ``p > 0`` decisions (threshold 0) differ from torch."""
    ckpt = load_checkpoint(make_checkpoint("global", 2))
    bias = ckpt.state_dict["gate.mlp.2.bias"]
    ckpt.state_dict["gate.mlp.2.bias"] = bias - torch.tensor([40.0, 25.0, 20.0, 0.0])
    export_bundle(ckpt, tmp_path / "b", verify=False)
    session = ort.InferenceSession(str(tmp_path / "b" / "fp32" / "gate.onnx"), providers=["CPUExecutionProvider"])
    model = ckpt.build_model()
    feats, lens = features([100, 40])
    with torch.no_grad():
        x, x_lens = model.frontend(torch.from_numpy(feats), torch.from_numpy(lens))
        want = model.gate(x, padding_mask(x_lens, x.shape[1])).sigmoid().numpy()  # (B, 4)
    (got,) = session.run(None, {"x": x.numpy(), "x_lens": x_lens.numpy()})
    assert (want[:, :3] < 1e-7).all() and (got > 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=0)


def test_confident_heads_verify_within_a_tolerance_relative_to_the_log_probs(make_checkpoint, tmp_path):
    """A trained model's log-probs of unlikely tokens reach -100s, where fp32 rounding alone is
    above 1e-4 (a README deploy run failed so); the end-to-end tolerance scales with the reference
    like the per-graph one, while an O(1) error still fails (test_a_wrong_graph_fails_...)."""
    ckpt = load_checkpoint(make_checkpoint("global", 2))
    ckpt.state_dict["head.linear.weight"] = ckpt.state_dict["head.linear.weight"] * 200.0
    manifest = export_bundle(ckpt, tmp_path / "b")
    e2e = manifest["verification"]["variants"]["fp32"]["end_to_end"]["full_depth"]
    assert e2e["log_probs_allowed"] > 1e-3  # |log-probs| above 10
    assert 1e-4 < e2e["log_probs_max_abs_diff"] <= e2e["log_probs_allowed"]  # an absolute 1e-4 refused it


def test_a_manifest_listing_an_unknown_graph_is_refused(make_bundle, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(make_bundle("global", 2), root)
    data = json.loads((root / MANIFEST_NAME).read_text())
    data["variants"]["fp32"]["graphs"]["layer00.extra"] = "fp32/layer00.ffn.onnx"
    (root / MANIFEST_NAME).write_text(json.dumps(data))
    assert_one_line_error(cli("inspect", root), "unknown graph(s) layer00.extra")


# ---------------------------------------------------------------------------- conformer kinds
@pytest.mark.parametrize(("arch", "gates"), [("conformer", "local"), ("conformer-macaron", "global")])
def test_conformer_bundle_exports_verifies_and_runs_with_gates(make_bundle, make_checkpoint, arch, gates):
    """A Conformer bundle (a convolution module per layer; macaron: half-step FFNs around it) has one
    graph per kind per layer with the table's interface, passed verification including padding
    invariance, and the runtime runs exactly the modules torch's gates select, skipping the others."""
    from i3d_edge import Runtime
    from i3d_edge.module_kinds import MODULE_KINDS

    root = make_bundle(gates, 2, arch=arch)
    manifest = load_manifest(root)
    assert manifest.model_config.arch == arch
    graphs = manifest.variant("fp32").graphs
    assert [k for k in graphs if role_of(k) in MODULE_KINDS] == list(manifest.modules)
    assert [role_of(k) for k in manifest.modules] == list(manifest.model_config.layer_kinds) * 2
    conv = ort.InferenceSession(str(root / graphs["layer01.conv"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in conv.get_inputs()] == ["x", "x_lens"] and [o.name for o in conv.get_outputs()] == ["y"]
    fp32 = manifest.verification["variants"]["fp32"]
    assert manifest.verification["status"] == "passed" and fp32["gate_agreement"] == 1.0
    assert fp32["end_to_end_max_abs_diff"] <= FP32_ATOL
    assert fp32["padding_invariance"]["log_probs_max_abs_diff"] <= FP32_ATOL
    assert fp32["padding_invariance"]["gate_probs_max_abs_diff"] <= FP32_ATOL
    kinds = ", ".join(manifest.model_config.layer_kinds)
    assert cli("inspect", root).stdout.splitlines()[1] == f"model         2 layers, d_model 64, 2 heads, d_ff 128, " \
                                                         f"vocab 29; {arch}: {kinds} per layer"

    model = load_checkpoint(make_checkpoint(gates, 2, arch=arch)).build_model()
    feats, lens = features([400, 230, 57], seed=3)
    got = Runtime(root).forward(feats, lens)
    with torch.no_grad():
        want = model(torch.from_numpy(feats), torch.from_numpy(lens))
    np.testing.assert_array_equal(got.gates, want.gates.numpy() > 0.5)
    assert 0 < got.gates.sum() < got.gates.size  # these random gates run some modules and skip others
    ran = {key for j, key in enumerate(manifest.modules) if got.gates[:, j].any()}
    assert set(got.module_runs) == ran  # a module no row selects is never run
    for row, n in enumerate(got.lens.tolist()):
        np.testing.assert_allclose(got.log_probs[row, :n], want.log_probs[row, :n].numpy(), atol=FP32_ATOL)


def test_conformer_padding_that_leaks_fails_verification(make_checkpoint, tmp_path, monkeypatch):
    """The padding-invariance check catches a convolution module whose time mask is missing: the
    export fails naming it, and nothing is written."""
    from i3d_edge.models import i3d

    masked = i3d.ConvModule.forward

    def unmasked(self, x, valid):
        return masked(self, x, torch.ones_like(valid))  # every frame counted as valid

    monkeypatch.setattr(i3d.ConvModule, "forward", unmasked)
    with pytest.raises(ExportError, match="padding invariance: CTC log-probs of a row alone and in its padded "
                                          "batch differ"):
        export_bundle(make_checkpoint("none", 1, arch="conformer"), tmp_path / "b")
    assert not (tmp_path / "b").exists()
