"""Bad and odd audio files through the API: bad files (``tests.conftest.BAD_AUDIO``) are refused
with a typed one-line error naming the file while the other files of the same call are still
transcribed; odd but valid files (8 channels, 8 / 48 kHz, clipped, very quiet, very loud float) are
transcribed; a truncated FLAC keeps its readable start. Loader messages for most of these files are
in test_audio.py; the same files through the command line in cli/test_bad_audio_files.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from i3d_edge.errors import AudioError, I3dEdgeError
from i3d_edge.runtime import Runtime
from tests.conftest import BAD_AUDIO, ODD_AUDIO, TINY


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2, **TINY)


@pytest.fixture(scope="module")
def rt(bundle) -> Runtime:
    return Runtime(bundle, threads=1)


def same(a, b) -> bool:
    """Same transcript; gate probabilities equal up to float rounding (a row computed inside a padded
    batch may take other GEMM kernels than the same row alone, e.g. on AVX-512 machines)."""
    return ((a.text, a.tokens, a.executed_modules) == (b.text, b.tokens, b.executed_modules)
            and a.gate_probs.keys() == b.gate_probs.keys()
            and np.allclose(list(a.gate_probs.values()), list(b.gate_probs.values()), rtol=0, atol=1e-5))


@pytest.mark.parametrize("case", list(BAD_AUDIO))
def test_bad_file_is_a_typed_one_line_error(rt, audio_files, case):
    path = audio_files["bad"][case]
    with pytest.raises(AudioError) as info:
        rt.transcribe(path)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, I3dEdgeError)
    message = str(err)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert BAD_AUDIO[case][1] in message


def test_bad_files_do_not_stop_the_others_and_the_runtime_survives(rt, bundle, audio_files):
    good, bad = audio_files["good"], audio_files["bad"]
    items = [good["a"], *bad.values(), good["b"]]
    results = list(rt.iter_transcripts(items, batch_size=3))
    assert [r.index for r in results] == list(range(len(items)))
    assert [r.name for r in results] == [str(p) for p in items]
    fresh = Runtime(bundle, threads=1)
    for r in (results[0], results[-1]):
        assert r.error is None and same(r.transcript, fresh.transcribe(r.name))
    for r in results[1:-1]:
        assert r.transcript is None and isinstance(r.error, AudioError)
        with pytest.raises(AudioError):
            r.unwrap()
    with pytest.raises(AudioError, match="too short"):  # the batch API raises the first bad input's error
        rt.transcribe_batch([good["a"], bad["one_sample"], good["b"]])
    assert same(rt.transcribe(good["a"]), fresh.transcribe(good["a"]))  # still serves after all that


@pytest.mark.parametrize("case", list(ODD_AUDIO))
def test_odd_but_valid_file_is_transcribed(rt, audio_files, case):
    t = rt.transcribe(audio_files["odd"][case])
    assert t.duration == pytest.approx(ODD_AUDIO[case][1], abs=2e-3)
    assert all(np.isfinite(p) and 0.0 <= p <= 1.0 for p in t.gate_probs.values())
    assert 0 <= t.modules_executed <= t.modules_total and isinstance(t.text, str)
    assert all(0.0 <= tok.start < tok.end <= t.duration + 1e-6 for tok in t.tokens)


def test_eight_channels_are_the_average_of_the_channels(rt, audio_files):
    pcm, rate = sf.read(audio_files["odd"]["eight_channels"], dtype="int16")  # (N, 8)
    assert pcm.shape[1] == 8
    mono = pcm.astype(np.float64).mean(axis=1) / 32768  # (N,)
    assert same(rt.transcribe(audio_files["odd"]["eight_channels"]), rt.transcribe(mono.astype(np.float32), rate))


def test_truncated_flac_keeps_its_readable_start_with_a_warning(rt, audio_files):
    from i3d_edge.errors import AudioWarning

    path = audio_files["bad"]["empty"].parent / "truncated.flac"
    with pytest.warns(AudioWarning, match="truncated.flac: damaged or truncated after"):
        result = rt.transcribe(path)
    assert 0.3 < result.duration < 3.0  # the decodable start of the 3 s original, not nothing and not all
