"""A waveform (wav2vec2-style) bundle's manifest declares its convolutions: a few edited bytes must not
allocate gigabytes when the bundle opens, and ``inspect`` refuses exactly what ``transcribe`` refuses.

Each case edits the manifest of a copy of the imported test bundle (conv strides 5 x 4 x 4 x 4, kernels
10, 3, 3, 2: 320 samples per encoder frame, a receptive field of 140 samples) and runs ``transcribe``
and ``inspect`` in a child process with bounded address space and time (``tests.conftest.run_cli``):
both give the same single ``error:`` line naming the manifest and the cause.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from i3d_edge.errors import BundleError
from i3d_edge.manifest import MANIFEST_NAME
from i3d_edge.runtime import Runtime
from tests.conftest import manifest_json, one_line_error, run_cli, save_manifest_json


def _wave(field: str, value: object) -> Callable[[dict], None]:
    return lambda d: d["model_config"]["waveform"].__setitem__(field, value)


def _features(**values: object) -> Callable[[dict], None]:
    return lambda d: d["feature_config"].update(values)


# case -> (edit, fragment of the one-line error)
CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "stride_of_200_000_samples": (_wave("conv_stride", [10, 10, 10, 200]),
                                  "conv strides of 200000 samples per encoder frame are beyond the ceiling of 16384"),
    "kernels_of_a_million": (_wave("conv_kernel", [10**6] * 4), "a conv kernel or stride is beyond the ceiling"),
    "receptive_field_of_160_000": (_wave("conv_kernel", [10, 3, 3, 2000]),
                                  "the convolutions read 159980 samples per encoder frame"),
    "64_conv_layers": (lambda d: d["model_config"]["waveform"].update(
        conv_dim=[16] * 64, conv_kernel=[2] * 64, conv_stride=[1] * 64), "64 conv layers, more than 16"),
    "conv_dim_1e6": (_wave("conv_dim", [16, 16, 16, 10**6]), "conv_dim 1000000 is beyond the ceiling of 4096"),
    "pos_conv_kernel_1e6": (_wave("pos_conv_kernel", 10**6), "pos_conv_kernel 1000000"),
    "pos_conv_groups_not_dividing": (_wave("pos_conv_groups", 3), "pos_conv_groups 3 does not divide d_model 32"),
    "stride_not_the_feature_hop": (_wave("conv_stride", [5, 4, 4, 8]),
                                   "hop_length 320 must be the waveform frontend's receptive field 140 and stride 640"),
    "hop_not_the_stride": (_features(hop_length=160),
                           "hop_length 160 must be the waveform frontend's receptive field 140 and stride 320"),
    "log_mel_features": (_features(kind="log_mel", do_normalize=False),
                         "kind log_mel does not fit a model with a waveform frontend"),
    "sample_rate_1000": (_features(sample_rate=1000, f_max=500.0), "sample_rate 1000 Hz is outside [4000, 384000]"),
}


@pytest.fixture
def edited(waveform_bundle: Path, tmp_path: Path) -> Callable[[Callable[[dict], None]], Path]:
    def make(change: Callable[[dict], None]) -> Path:
        bundle = Path(shutil.copytree(waveform_bundle, tmp_path / "bundle"))
        data = manifest_json(bundle)
        change(data)
        save_manifest_json(bundle, data)
        return bundle

    return make


@pytest.mark.parametrize("case", list(CASES))
def test_transcribe_and_inspect_refuse_the_same_way_before_allocating(edited, wav, case):
    change, fragment = CASES[case]
    bundle = edited(change)
    lines = [one_line_error(run_cli(*command, memory_mb=1024), str(bundle.resolve() / MANIFEST_NAME), fragment)
             for command in (["transcribe", str(wav), "--model", str(bundle)], ["inspect", str(bundle)])]
    assert lines[0] == lines[1]


@pytest.mark.parametrize("case", ["stride_of_200_000_samples", "log_mel_features", "sample_rate_1000"])
def test_the_runtime_names_the_manifest(edited, case):
    change, fragment = CASES[case]
    bundle = edited(change)
    with pytest.raises(BundleError) as info:
        Runtime(bundle)
    message = str(info.value)
    assert message.startswith(f"{bundle.resolve() / MANIFEST_NAME}: ") and fragment in message and "\n" not in message


def test_the_unedited_bundle_opens(waveform_bundle, wav):
    """The ceilings do not refuse the real thing: the imported bundle transcribes and inspects."""
    assert run_cli("inspect", str(waveform_bundle)).returncode == 0
    run = run_cli("transcribe", str(wav), "--model", str(waveform_bundle))
    assert run.returncode == 0 and run.stdout == Runtime(waveform_bundle).transcribe(wav).text + "\n"
