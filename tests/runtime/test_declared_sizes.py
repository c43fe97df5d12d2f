"""Hardening round two (issue #14): hostile bundles, graphs and language models, through the CLI.

Every hostile file is made here by the test. Each case runs the real ``i3d-edge`` command in a
child process with an address-space limit (a case that tried to allocate gigabytes would fail
with "out of memory" instead of the expected message) and a generous timeout (a hang fails the
test), and asserts the exit status, the single ``error:`` line naming the file and the cause,
that no traceback is printed, and that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper

from i3d_edge.errors import BundleError, ConfigError
from i3d_edge.manifest import MANIFEST_NAME, sha256_file
from i3d_edge.runtime import Runtime
from tests.conftest import ROOT, signal_when, speechlike

TINY = {"d_model": 32, "d_ff": 64}  # 2 layers, 29 tokens: 4 gates
MEMORY_MB = 1536  # address space of every CLI child (a normal transcribe or inspect fits in it)
TIMEOUT = 180  # seconds; each case takes a few on a loaded 2-core machine


def cli(*args: str, cache: Path | None = None, memory_mb: int = MEMORY_MB) -> subprocess.CompletedProcess[str]:
    """Run ``i3d-edge ARGS`` in a child with bounded address space and time."""
    limit = memory_mb << 20

    def bound() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache is not None:
        env["I3D_EDGE_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "i3d_edge", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, preexec_fn=bound, env=env, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> str:
    """Assert exit status ``code``, no traceback and one ``error:`` line with every fragment; return it."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST_NAME).read_text())


def _save(bundle: Path, data: dict) -> None:
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("round2-audio") / "a.wav"
    sf.write(path, speechlike(1.5, seed=4), 16000)
    return path


@pytest.fixture
def bundle(make_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle (2 layers, d_model 32)."""
    return Path(shutil.copytree(make_bundle("global", 2, **TINY), tmp_path / "bundle"))


# ---------------------------------------------------------------------------- declared sizes
def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        data = _manifest(bundle)
        change(data)
        _save(bundle, data)

    return apply


def _set(section: str, field: str, value: object) -> Callable[[Path], None]:
    return _edit(lambda d: d[section].__setitem__(field, value))


def _many_files(bundle: Path) -> None:
    data = _manifest(bundle)
    data["files"].update({f"x/{i}.onnx": {"sha256": "0" * 64, "bytes": 1} for i in range(10_000)})
    _save(bundle, data)


def _deep_path(bundle: Path) -> None:
    data = _manifest(bundle)
    data["files"]["/".join(["d"] * 200) + ".onnx"] = {"sha256": "0" * 64, "bytes": 1}
    _save(bundle, data)


def _huge_manifest(bundle: Path) -> None:
    data = _manifest(bundle)
    data["provenance"]["padding"] = "x" * (17 << 20)
    _save(bundle, data)


def _fifo_manifest(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).unlink()
    os.mkfifo(bundle / MANIFEST_NAME)


def _fifo_graph(bundle: Path) -> None:
    (bundle / "fp32" / "layer00.ffn.onnx").unlink()
    os.mkfifo(bundle / "fp32" / "layer00.ffn.onnx")


def _directory_graph(bundle: Path) -> None:
    (bundle / "fp32" / "head.onnx").unlink()
    (bundle / "fp32" / "head.onnx").mkdir()


def _quantization_string(bundle: Path) -> None:
    data = _manifest(bundle)
    data["variants"]["fp32"]["quantization"] = "int8"
    _save(bundle, data)


# case -> (damage, fragments of the one-line message besides the manifest's path)
DECLARED: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "n_layers_1e9": (_set("model_config", "n_layers", 10**9), ("n_layers 1000000000 is beyond the ceiling of 256",)),
    "n_layers_1e6": (_set("model_config", "n_layers", 10**6), ("n_layers 1000000 is beyond the ceiling",)),
    "d_ff_1e9": (_set("model_config", "d_ff", 10**9), ("d_ff 1000000000 is beyond the ceiling",)),
    "d_ff_more_than_the_graphs_hold": (_set("model_config", "d_ff", 60_000),
                                       ("implies at least", "fp32 graphs hold only")),
    "hop_length_1": (_set("feature_config", "hop_length", 1), ("hop_length 1 gives 16000 frames per second",)),
    "sample_rate_1e9": (_set("feature_config", "sample_rate", 10**9), ("sample_rate 1000000000 Hz is outside",)),
    "n_fft_1e6": (_set("feature_config", "n_fft", 10**6), ("n_fft 1000000 is beyond the ceiling",)),
    "10000_files": (_many_files, ("files, more than the 8192 a bundle may have",)),
    "path_of_200_parts": (_deep_path, ("longer than 512 characters or 8 components",)),
    "17_MiB_manifest": (_huge_manifest, ("larger than the 16 MiB a bundle manifest may have",)),
    "fifo_manifest": (_fifo_manifest, ("manifest.json: not a regular file",)),
    "fifo_graph": (_fifo_graph, ("layer00.ffn.onnx: not a regular file",)),
    "directory_graph": (_directory_graph, ("head.onnx: not a regular file",)),
    "provenance_not_an_object": (_edit(lambda d: d.__setitem__("provenance", [1, 2])),
                                 ("manifest field 'provenance' has the wrong type",)),
    "verification_not_an_object": (_edit(lambda d: d.__setitem__("verification", "ok")),
                                   ("manifest field 'verification' has the wrong type",)),
    "quantization_not_an_object": (_quantization_string, ("quantization entry of the wrong type",)),
}


@pytest.mark.parametrize("case", list(DECLARED))
def test_declared_sizes_are_refused_before_allocating(bundle, wav, case):
    damage, fragments = DECLARED[case]
    damage(bundle)
    before = sorted(p.name for p in bundle.parent.iterdir())
    for command in (["transcribe", str(wav), "--model", str(bundle)], ["inspect", str(bundle)]):
        line = one_line_error(cli(*command), *fragments)
        assert str(bundle.resolve()) in line and "a.wav" not in line  # not blamed on the audio
    assert sorted(p.name for p in bundle.parent.iterdir()) == before


def test_declared_sizes_are_one_line_errors_through_the_api(bundle):
    _set("model_config", "n_layers", 10**9)(bundle)
    with pytest.raises(BundleError, match="n_layers 1000000000 is beyond the ceiling") as info:
        Runtime(bundle)
    assert "\n" not in str(info.value)


def test_a_loop_of_symlinks_is_named_as_such(tmp_path, wav):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    line = one_line_error(cli("transcribe", str(wav), "--model", str(loop)), "Too many levels of symbolic links")
    assert str(loop) in line and "no such" not in line
    one_line_error(cli("export", str(loop), "-o", str(tmp_path / "out")), "cannot access the checkpoint",
                   "Too many levels of symbolic links")
    assert not (tmp_path / "out").exists()


def test_threads_are_bounded(make_bundle, wav):
    one_line_error(cli("transcribe", str(wav), "--model", str(make_bundle("global", 2, **TINY)), "--threads",
                       "100000"), "threads must be at most", "got 100000")
    with pytest.raises(ConfigError, match="threads must be at most"):
        Runtime(make_bundle("global", 2, **TINY), threads=100_000)


# ---------------------------------------------------------------------------- graph interfaces
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
    data = _manifest(bundle)
    rel = data["variants"]["fp32"]["graphs"][key]
    onnx.save(model, bundle / rel)
    data["files"][rel] = {"sha256": sha256_file(bundle / rel), "bytes": (bundle / rel).stat().st_size}
    _save(bundle, data)
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
        assert one_line_error(cli(*command)) == f"error: {message}"  # the same line as the runtime's


# ---------------------------------------------------------------------------- language models
ARPA_HEAD = "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n"
GOOD_ARPA = (ARPA_HEAD + "-1.0\t<unk>\n-99\t<s>\t-0.5\n-1.0\t</s>\n-1.0\tone\t-0.3\n\n\\2-grams:\n-0.5\t<s> one\n\n"
             "\\end\\\n")
BAD_ARPA: dict[str, tuple[str, str]] = {  # case -> (text, fragment)
    "negative_count": (GOOD_ARPA.replace("ngram 1=4", "ngram 1=-5"), "expected 'ngram 1=COUNT'"),
    "word_of_100000_characters": (GOOD_ARPA.replace("one", "a" * 100_000), "a word may have at most 256"),
    "word_of_300_characters": (GOOD_ARPA.replace("one", "a" * 300), "a word of 300 characters"),
    "nan_probability": (GOOD_ARPA.replace("-1.0\tone", "nan\tone"), "finite log10 values"),
    "infinite_backoff": (GOOD_ARPA.replace("-0.3", "-inf"), "finite log10 values"),
    "count_beyond_the_file": (GOOD_ARPA.replace("ngram 2=1", "ngram 2=1000000000"), "cannot fit in a file"),
    "fewer_lines_than_declared": (GOOD_ARPA.replace("ngram 1=4", "ngram 1=5"), "fewer lines than its declared 5"),
    "no_end": (GOOD_ARPA.replace("\\end\\\n", ""), "expected \\end\\"),
    "unknown_word_in_a_bigram": (GOOD_ARPA.replace("<s> one", "<s> two"), "not a 1-gram"),
    "order_7": (GOOD_ARPA.replace("ngram 2=1\n", "ngram 2=1\n" + "".join(f"ngram {n}=0\n" for n in range(3, 8))),
                "loads orders 2 to 6"),
}


@pytest.mark.parametrize("case", list(BAD_ARPA))
def test_a_bad_arpa_file_is_refused_before_kenlm_sees_it(bundle, tmp_path, case):
    text, fragment = BAD_ARPA[case]
    arpa = tmp_path / f"{case}.arpa"
    arpa.write_text(text)
    before = snapshot(bundle)
    line = one_line_error(cli("lm", str(bundle), "--arpa", str(arpa), cache=tmp_path / "cache"), fragment)
    assert str(arpa) in line and "not a usable ARPA language model" in line
    assert snapshot(bundle) == before and not (bundle / "lm").exists()  # no .tmp-*.arpa left behind


def _carry_lm(bundle: Path, text: str) -> Path:
    """Put an ARPA file into the bundle's manifest by hand, with its true hash (as an attacker would)."""
    rel = "lm/words-0123456789abcdef.arpa"
    (bundle / "lm").mkdir()
    (bundle / rel).write_text(text)
    data = _manifest(bundle)
    data["files"][rel] = {"sha256": sha256_file(bundle / rel), "bytes": (bundle / rel).stat().st_size}
    data["decoder"] = {"kind": "lexicon-kenlm", "lm": rel, "lm_weight": 1.0, "word_score": 0.0, "beam_size": 8,
                       "beam_threshold": 25.0}
    _save(bundle, data)
    return bundle / rel


@pytest.mark.parametrize("case", ["negative_count", "word_of_100000_characters"])
def test_a_bundle_carrying_a_crashing_lm_is_a_one_line_error_and_greedy_still_works(bundle, wav, tmp_path, case):
    """Both files crash KenLM's loader (rc 139 before this round); now the LM is refused in one line,
    the process survives, and greedy decoding of the same bundle works."""
    pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra")
    text, fragment = BAD_ARPA[case]
    path = _carry_lm(bundle, text)
    cache = tmp_path / "cache"
    for command in (["transcribe", str(wav), "--model", str(bundle), "--decoder", "lm"], ["inspect", str(bundle)]):
        line = one_line_error(cli(*command, cache=cache), str(path.resolve()), fragment)
    greedy = cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "greedy", cache=cache)
    assert greedy.returncode == 0 and greedy.stderr == "", greedy.stderr
    rt = Runtime(bundle, decoder="greedy")
    assert greedy.stdout.strip() == rt.transcribe(wav).text
    lm_rt = Runtime(bundle, decoder="lm")
    for _ in range(2):  # the verdict is cached: the second call fails the same way, the process lives on
        with pytest.raises(BundleError) as info:
            lm_rt.transcribe(wav)
        assert f"error: {info.value}" == line
    assert not cache.exists()  # a refused model leaves no verdict on disk


def test_a_good_lm_is_probed_once_and_its_verdict_cached_on_disk(bundle, wav, tmp_path):
    pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra")
    cache = tmp_path / "cache"
    first = cli("lm", str(bundle), "--text", str(_text(tmp_path, "one two\ntwo one one\n")), cache=cache)
    assert first.returncode == 0, first.stderr
    verdicts = list((cache / "lm-verdicts").iterdir())
    assert len(verdicts) == 1 and verdicts[0].read_text() == "ok\n"
    run = cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "lm", cache=cache)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert list((cache / "lm-verdicts").iterdir()) == verdicts


def _text(folder: Path, content: str, name: str = "text.txt") -> Path:
    path = folder / name
    path.write_text(content)
    return path


def test_lm_text_from_dev_zero_is_bounded(bundle, tmp_path):
    before = snapshot(bundle)
    line = one_line_error(cli("lm", str(bundle), "--text", "/dev/zero", cache=tmp_path / "c", memory_mb=1024),
                          "/dev/zero: line 1 is longer than 65536 characters")
    assert line and snapshot(bundle) == before and not (bundle / "lm").exists()


@pytest.mark.parametrize(("content", "fragment"), [
    ("one two\none " + "a" * 100_000 + " two\n", "line 2 is longer than 65536 characters"),
    ("one two\none " + "a" * 1000 + " two\n", "line 2 has a word longer than 256 characters"),
    ("\n  \n\t\n", "the training text has no non-empty sentences"),
])
def test_lm_text_errors_name_the_text_file(bundle, tmp_path, content, fragment):
    text = _text(tmp_path, content)
    before = snapshot(bundle)
    line = one_line_error(cli("lm", str(bundle), "--text", str(text), cache=tmp_path / "c"), fragment)
    assert line.startswith(f"error: {text}: ")
    assert snapshot(bundle) == before and not (bundle / "lm").exists()


# ---------------------------------------------------------------------------- checkpoints and export
def _checkpoint(make_checkpoint, tmp_path: Path, change: Callable[[dict], None]) -> Path:
    import torch

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
    line = one_line_error(cli("export", str(ckpt), "-o", str(out), *extra, memory_mb=3072), *fragments)
    assert str(ckpt) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]  # no bundle, no staging folder


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777) for p in [folder, *folder.rglob("*")]}


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_bundles_are_readable_by_all_as_the_umask_allows(make_checkpoint, tmp_path, umask, file_mode, dir_mode):
    from i3d_edge.export import export_bundle

    saved = os.umask(umask)
    try:
        export_bundle(make_checkpoint("global", 2, **TINY), tmp_path / "b", verify=False)
    finally:
        os.umask(saved)
    assert _modes(tmp_path / "b") == {("file", file_mode), ("dir", dir_mode)}


def test_the_staging_folders_of_a_killed_export_are_removed_by_the_next(make_checkpoint, tmp_path):
    from i3d_edge.export import export_bundle

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = tmp_path / f".b.partial-{int(dead.stdout)}-abcd1234"
    live = tmp_path / f".b.partial-{os.getpid()}-efgh5678"  # an export still running (this process)
    for folder in (stale, live):
        (folder / "fp32").mkdir(parents=True)
        (folder / "fp32" / "frontend.onnx").write_bytes(np.zeros(1 << 20, np.uint8).tobytes())
    export_bundle(make_checkpoint("global", 2, **TINY), tmp_path / "b", verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", live.name])


@pytest.mark.skipif(os.name != "posix", reason="sends SIGTERM")
def test_sigterm_during_export_cleans_up_like_sigint(make_checkpoint, tmp_path):
    import signal

    out = tmp_path / "b"
    args = [sys.executable, "-m", "i3d_edge", "export", str(make_checkpoint("local", 8)), "-o", str(out)]
    code, stdout, stderr = signal_when(
        args, lambda: any(any((s / "fp32").glob("*.onnx")) for s in tmp_path.glob(".b.partial-*")),
        signal.SIGTERM, env={**os.environ, "PYTHONPATH": str(ROOT)}, what="export")
    assert code == 130 and stderr == "error: interrupted\n" and "exported" not in stdout, stderr
    assert list(tmp_path.iterdir()) == []


def test_inspect_json_never_prints_nan(bundle):
    data = _manifest(bundle)
    data["verification"] = {"status": "passed", "tolerance": float("nan"), "variants": {"fp32": {
        "graphs_max_abs_diff": float("inf"), "end_to_end_max_abs_diff": float("nan"), "gate_agreement": 1.0}}}
    _save(bundle, data)
    for args in (["--json"], []):
        proc = cli("inspect", str(bundle), *args)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout
    report = json.loads(cli("inspect", str(bundle), "--json").stdout)
    assert report["verification"]["tolerance"] is None and report["verification"]["variants"]["fp32"][
        "gate_agreement"] == 1.0


@pytest.mark.skipif(os.name != "posix", reason="sends SIGTERM")
def test_sigterm_during_lm_leaves_no_temporary_file(bundle, tmp_path):
    import signal

    rng = np.random.default_rng(0)
    words = np.array(["".join(rng.choice(list("abcdefgh"), 6)) for _ in range(5000)])
    text = tmp_path / "big.txt"
    text.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(200_000)) + "\n")
    before = snapshot(bundle)
    code, stdout, stderr = signal_when(
        [sys.executable, "-m", "i3d_edge", "lm", str(bundle), "--text", str(text)],
        lambda: (bundle / "lm").is_dir() and any((bundle / "lm").glob(".tmp-*.arpa")), signal.SIGTERM,
        env={**os.environ, "PYTHONPATH": str(ROOT), "I3D_EDGE_CACHE_DIR": str(tmp_path / "c")}, what="lm")
    assert code == 130 and stderr == "error: interrupted\n" and "attached" not in stdout, stderr
    assert snapshot(bundle) == before and not (bundle / "lm").exists()
