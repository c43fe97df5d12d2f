"""The runtime never needs torch: import and transcribe with torch blocked, in and out of process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import speechlike

PARITY_ATOL = 1e-4


@pytest.fixture(scope="module")
def prepared(make_bundle, make_checkpoint, tmp_path_factory):
    """Bundle, a wav file and the torch reference, all made while torch is still importable."""
    torch = pytest.importorskip("torch")
    from i3d_edge.features import log_mel, normalize
    from i3d_edge.models.checkpoint import load_checkpoint

    bundle = make_bundle("local", 2)
    ckpt = load_checkpoint(make_checkpoint("local", 2))
    audio = speechlike(1.7, seed=4)
    wav = tmp_path_factory.mktemp("torchfree") / "clip.wav"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    feats = normalize(log_mel(audio, ckpt.feature_config), ckpt.feature_config)[None]  # (1, T, F)
    lens = np.array([feats.shape[1]], dtype=np.int64)
    with torch.no_grad():
        ref = ckpt.build_model()(torch.from_numpy(feats), torch.from_numpy(lens))
    return bundle, wav, feats, lens, ref.log_probs.numpy(), ref.gates.numpy() > 0.5


def test_runtime_works_with_torch_blocked(prepared, block_torch):
    bundle, wav, feats, lens, ref_log_probs, ref_gates = prepared
    with pytest.raises(ImportError):
        import torch  # noqa: F401
    from i3d_edge import Runtime

    rt = Runtime(bundle)
    out = rt.forward(feats, lens)
    n = int(out.lens[0])
    assert float(np.abs(out.log_probs[0, :n] - ref_log_probs[0, :n]).max()) <= PARITY_ATOL
    np.testing.assert_array_equal(out.gates, ref_gates)
    assert rt.transcribe(wav).modules_executed == int(ref_gates.sum())
    assert "torch" not in sys.modules


BLOCKED = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
from i3d_edge import Runtime
t = Runtime(sys.argv[1]).transcribe(sys.argv[2])
assert "torch" not in sys.modules
print(json.dumps(t.to_dict()))
"""


def test_fresh_process_without_torch_gives_the_same_transcript(prepared):
    from i3d_edge.runtime import Runtime

    bundle, wav, *_ = prepared
    proc = subprocess.run([sys.executable, "-c", BLOCKED, str(bundle), str(wav)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = Runtime(bundle).transcribe(wav)
    assert got["text"] == want.text and got["executed_modules"] == list(want.executed_modules)
    assert got["tokens"] == [t.to_dict() for t in want.tokens]
