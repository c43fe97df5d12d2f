"""A language model whose native loader kills its process (a signal, not an exception) is found by the
probe in a child process: one line naming the file and the signal, and this process, greedy
decoding and the other bundles go on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

pytest.importorskip("flashlight.lib.text")

from i3d_edge.errors import BundleError
from i3d_edge.runtime import Runtime
from tests.conftest import speechlike


def test_a_loader_killed_by_a_signal_is_a_one_line_error_and_greedy_still_works(make_bundle, tmp_path, monkeypatch):
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "bundle")
    word = "x" + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "abcdefghij"))  # an LM never probed
    # attached (and probed: it loads) in another process, so this one has no verdict on it yet
    attach = (f"from i3d_edge.bundle.language_model import attach_language_model as a; "
              f"a({str(bundle)!r}, sentences=['one two {word}', 'two three'], order=2)")
    env = {**os.environ, "I3D_EDGE_CACHE_DIR": str(tmp_path / "attach-cache")}
    subprocess.run([sys.executable, "-c", attach], check=True, env=env, timeout=300)
    # Every Python started from now on kills itself with SIGSEGV at start-up, as a crashing
    # native loader would: the probe's child is the only one this test starts.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("I3D_EDGE_CACHE_DIR", str(tmp_path / "cache"))  # no verdict cached on disk
    with pytest.raises(BundleError) as info:
        Runtime(bundle, decoder="lm").transcribe(speechlike(1.0), 16000)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(bundle / "lm"))
    assert "crashed with SIGSEGV" in message
    greedy = Runtime(bundle, decoder="greedy").transcribe(speechlike(1.0), 16000)
    assert greedy.text == Runtime(make_bundle("global")).transcribe(speechlike(1.0), 16000).text
