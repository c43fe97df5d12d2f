"""One Runtime under sustained use: shared by 8 threads over 200 utterances it gives the sequential
results; 1,000 calls do not grow its memory or open files.

test_runtime.py shares a Runtime between 8 threads on 24 clips (and checks lazy session creation
under the race); here it is 200 utterances, and memory over 1,000 calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from i3d_edge.runtime import Runtime
from tests.conftest import TINY, speechlike


def _clips(n: int) -> list[np.ndarray]:
    """Short utterances of 13 different lengths (0.3 to 1.14 s) and kinds."""
    return [speechlike(0.3 + 0.07 * (i % 13), seed=i) for i in range(n)]


def _key(t) -> tuple:
    return t.text, t.tokens, t.executed_modules, t.gate_probs, t.segments


def test_200_utterances_on_8_threads_equal_sequential(make_bundle):
    rt = Runtime(make_bundle("global", 2, **TINY), threads=1, threshold=0.55)
    clips = _clips(200)
    sequential = [_key(rt.transcribe(c, 16000)) for c in clips]
    assert len({s[2] for s in sequential}) > 1, "utterances should choose different modules"
    start = threading.Barrier(8)

    def work(worker: int) -> list[tuple[int, tuple]]:
        start.wait()  # all eight threads in flight together
        return [(i, _key(rt.transcribe(clips[i], 16000))) for i in range(worker, len(clips), 8)]

    with ThreadPoolExecutor(8) as pool:
        threaded = dict(kv for part in pool.map(work, range(8)) for kv in part)
    assert sorted(threaded) == list(range(200))
    mismatched = [i for i, ref in enumerate(sequential) if threaded[i] != ref]
    assert mismatched == []


# 1,000 calls in a child process (nothing else of the test session in its heap), a file every
# fourth call so that the soundfile path is exercised too. RSS after a warm-up over every clip.
_LEAK_CHILD = """
import gc, json, sys
import numpy as np, psutil
from i3d_edge.runtime import Runtime

bundle, clips_path, wav = sys.argv[1:4]
with np.load(clips_path) as data:
    clips = [data[k] for k in sorted(data.files)]
rt = Runtime(bundle, threads=1)
me = psutil.Process()

def call(i):
    return rt.transcribe(wav) if i % 4 == 3 else rt.transcribe(clips[i % len(clips)], 16000)

for i in range(4 * len(clips)):
    call(i)
gc.collect()
before, fds = me.memory_info().rss, me.num_fds()
for i in range(1000):
    call(i)
gc.collect()
print(json.dumps({"before": before, "after": me.memory_info().rss, "fds": [fds, me.num_fds()],
                  "threads": me.num_threads()}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="num_fds is POSIX-only")
def test_a_thousand_calls_do_not_grow_memory(make_bundle, tmp_path):
    clips = _clips(13)
    np.savez(tmp_path / "clips.npz", **{f"c{i:02d}": c for i, c in enumerate(clips)})
    wav = tmp_path / "clip.wav"
    sf.write(wav, speechlike(0.8, sr=22050, seed=99), 22050)
    bundle = make_bundle("global", 2, **TINY)
    proc = subprocess.run([sys.executable, "-c", _LEAK_CHILD, str(bundle), str(tmp_path / "clips.npz"), str(wav)],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    growth = (report["after"] - report["before"]) / 2**20
    print(f"\nRSS {report['before'] / 2**20:.1f} MB -> {report['after'] / 2**20:.1f} MB over 1,000 calls "
          f"({growth:+.2f} MB); open files {report['fds'][0]} -> {report['fds'][1]}")
    assert growth < 10.0, report
    assert report["fds"][1] <= report["fds"][0], report  # no file handle left open per call
