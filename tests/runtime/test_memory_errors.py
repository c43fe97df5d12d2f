"""Running out of memory on one input is that input's one-line error, naming it; the others go on."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from i3d_edge.runtime import Runtime
from tests.conftest import speechlike


def test_an_input_out_of_memory_in_the_encoder_is_named_and_the_others_go_on(make_bundle, tmp_path):
    rt = Runtime(make_bundle("global", 2), threshold=0.5)
    paths = []
    for i, seconds in enumerate((1.0, 3.0, 1.5)):
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], speechlike(seconds, seed=i), 16000, subtype="PCM_16")

    def forward(features: np.ndarray, lens: np.ndarray):
        if features.shape[1] > 200:  # only the 3 s clip (about 300 feature frames)
            raise MemoryError
        return rt.forward(features, lens)

    results = list(rt.with_encoder(forward).iter_transcripts(paths, batch_size=1))
    assert [r.index for r in results] == [0, 1, 2]
    assert [r.error is None for r in results] == [True, False, True]
    message = str(results[1].error)
    assert message.startswith(f"{paths[1]}: out of memory in the encoder") and "\n" not in message
    for k in (0, 2):  # the neighbours are untouched: the same text as a plain run
        assert results[k].unwrap().text == rt.transcribe(paths[k]).text
        assert results[k].unwrap().tokens == rt.transcribe(paths[k]).tokens


def test_every_input_of_a_batch_that_runs_out_of_memory_fails_named(make_bundle, tmp_path):
    rt = Runtime(make_bundle("global", 2), threshold=0.5)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"clip{i}.wav")
        sf.write(paths[-1], speechlike(1.0 + 0.2 * i, seed=i), 16000, subtype="PCM_16")
    calls = []

    def forward(features: np.ndarray, lens: np.ndarray):
        calls.append(features.shape[0])
        if len(calls) == 1:  # the first batch (clips 0 and 1 together)
            raise MemoryError
        return rt.forward(features, lens)

    results = list(rt.with_encoder(forward).iter_transcripts(paths, batch_size=2))
    assert calls == [2, 1]
    assert [str(r.error).split(":")[0] if r.error else None for r in results] == [str(paths[0]), str(paths[1]), None]
    assert all("out of memory" in str(r.error) for r in results[:2])
    assert results[2].unwrap().text == rt.transcribe(paths[2]).text
