"""Bundle manifests that declare sizes, counts or file kinds the runtime must not trust: refused in
one line before anything is allocated, by ``i3d-edge transcribe``, ``i3d-edge inspect`` and the API.

Each case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``) and asserts the exit status, the single ``error:`` line naming the
file and the cause, and that no traceback is printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import MANIFEST_NAME
from i3d_edge.runtime import Runtime
from tests.conftest import manifest_json, one_line_error, run_cli, save_manifest_json


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        data = manifest_json(bundle)
        change(data)
        save_manifest_json(bundle, data)

    return apply


def _set(section: str, field: str, value: object) -> Callable[[Path], None]:
    return _edit(lambda d: d[section].__setitem__(field, value))


def _many_files(bundle: Path) -> None:
    data = manifest_json(bundle)
    data["files"].update({f"x/{i}.onnx": {"sha256": "0" * 64, "bytes": 1} for i in range(10_000)})
    save_manifest_json(bundle, data)


def _deep_path(bundle: Path) -> None:
    data = manifest_json(bundle)
    data["files"]["/".join(["d"] * 200) + ".onnx"] = {"sha256": "0" * 64, "bytes": 1}
    save_manifest_json(bundle, data)


def _huge_manifest(bundle: Path) -> None:
    data = manifest_json(bundle)
    data["provenance"]["padding"] = "x" * (17 << 20)
    save_manifest_json(bundle, data)


def _sparse_manifest(bundle: Path) -> None:
    os.truncate(bundle / MANIFEST_NAME, 8 << 30)  # 8 GiB of holes: read whole, it would exhaust the memory


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
    data = manifest_json(bundle)
    data["variants"]["fp32"]["quantization"] = "int8"
    save_manifest_json(bundle, data)


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
    "sparse_8_GiB_manifest": (_sparse_manifest, ("larger than the 16 MiB a bundle manifest may have",)),
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
        line = one_line_error(run_cli(*command), *fragments)
        assert str(bundle.resolve()) in line and "a.wav" not in line  # not blamed on the audio
    assert sorted(p.name for p in bundle.parent.iterdir()) == before


@pytest.mark.parametrize("case", list(DECLARED))
def test_declared_sizes_are_one_line_errors_through_the_api(bundle, case):
    """The same cases in process: ``Runtime`` raises one BundleError line naming the bundle."""
    damage, fragments = DECLARED[case]
    damage(bundle)
    with pytest.raises(BundleError) as info:
        Runtime(bundle)
    message = str(info.value)
    assert "\n" not in message and str(bundle.resolve()) in message
    for fragment in fragments:
        assert fragment in message
