"""Live transcription on top of :class:`~i3d_edge.runtime.stream.Stream`: where the audio comes
from (an audio file, 16-bit PCM from a pipe, an input device through PortAudio) and the loop that
feeds the stream from it.

Each source produces its chunks on its own thread (or PortAudio's callback thread) into a queue;
one consumer thread feeds the stream and transcribes. While an utterance is being transcribed
the source keeps producing into the queue, so a burst of speech that arrives meanwhile is not
dropped, only delayed. ``sounddevice`` (the ``[live]`` extra) is imported only by the device source.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..errors import AudioError, first_line
from ..extras import install_hint
from ..runtime.results import Transcript
from ..runtime.stream import Stream, Utterance

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["CHUNK_SECONDS", "Feed", "device_source", "file_source", "list_devices", "listen", "raw_source",
           "warm_up"]

CHUNK_SECONDS = 0.1  # chunk length read from files and pipes, and PortAudio's block
_END = object()  # the source's end, on the queue


@dataclass
class Feed:
    """A running source: its sample rate, its queue of (n,) chunks, and how to stop it."""

    name: str
    rate: int
    chunks: queue.Queue[Any]
    stop: Callable[[], None]
    dropped: Callable[[], int] = lambda: 0  # input overflows the device reported


def _producer(name: str, rate: int, blocks: Iterator[np.ndarray], realtime: bool) -> Feed:
    chunks: queue.Queue[Any] = queue.Queue()
    halt = threading.Event()

    def run() -> None:
        t0, sent = time.monotonic(), 0
        try:
            for block in blocks:
                if halt.is_set():
                    break
                chunks.put(block)
                sent += block.shape[0]
                if realtime:  # pace: this chunk is "heard" once its last sample has been spoken
                    delay = t0 + sent / rate - time.monotonic()
                    if delay > 0 and halt.wait(delay):
                        break
        except BaseException as exc:  # raised again by the consumer, in its thread
            chunks.put(exc)
        chunks.put(_END)

    threading.Thread(target=run, name=f"i3d-edge source {name}", daemon=True).start()
    return Feed(name, rate, chunks, halt.set)


def file_source(path: str, realtime: bool = False, name: str | None = None) -> Feed:
    """An audio file in any format libsndfile reads, at its own rate (mixed to mono), in chunks of
    CHUNK_SECONDS, paced at real time with ``realtime``."""
    from ..audio import audio_info, stream_audio

    rate = audio_info(path).sample_rate
    blocks = stream_audio(path, None, rate, min_samples=1, block_seconds=CHUNK_SECONDS)
    return _producer(name or path, rate, blocks, realtime)


def _pcm_blocks(fh: BinaryIO, rate: int) -> Iterator[np.ndarray]:
    size = 2 * max(1, int(CHUNK_SECONDS * rate))
    read = getattr(fh, "read1", fh.read)  # what a pipe has now, up to a chunk: no waiting for a full one
    carry = b""
    while True:
        data = read(size)
        if not data:
            return
        data, carry = carry + data, b""
        if len(data) % 2:  # half a sample: completed by the next read
            data, carry = data[:-1], data[-1:]
        if data:
            yield np.frombuffer(data, dtype="<i2")


def raw_source(fh: BinaryIO, rate: int, name: str, realtime: bool = False) -> Feed:
    """Headerless 16-bit little-endian mono PCM (``arecord -f S16_LE -c 1``) at ``rate`` from a
    binary file object (a file or standard input), read as it arrives."""
    return _producer(name, rate, _pcm_blocks(fh, rate), realtime)


def _sounddevice() -> Any:
    """The sounddevice module; a one-line AudioError when PortAudio itself is missing."""
    try:
        import sounddevice
    except ImportError:
        raise AudioError(f"audio devices need sounddevice, from the [live] extra: {install_hint('live')}"
                         ) from None
    except OSError as exc:  # the Python package is there but not the PortAudio library
        raise AudioError(f"audio devices: {first_line(exc)} (install PortAudio: apt-get install "
                         "libportaudio2, or give --input FILE)") from None
    return sounddevice


def list_devices() -> str:
    """PortAudio's devices, one per line (``>`` marks the default input, ``<`` the default output)."""
    sd = _sounddevice()
    try:
        return str(sd.query_devices())
    except sd.PortAudioError as exc:
        raise AudioError(f"audio devices: {first_line(exc)}") from None


def device_source(device: str | int | None, rate: int | None = None) -> Feed:
    """Capture one channel from an input device (index, part of its name, or None: the default),
    at ``rate`` (default: the device's own rate)."""
    sd = _sounddevice()
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    try:
        info = sd.query_devices(device, kind="input")
        rate = int(rate or info["default_samplerate"])
        chunks: queue.Queue[Any] = queue.Queue()
        overflows = [0]

        def callback(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            if status.input_overflow:
                overflows[0] += 1
            chunks.put(indata[:, 0].copy())  # (frames,) float32; never blocks (unbounded queue)

        capture = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                 blocksize=max(1, int(CHUNK_SECONDS * rate)), callback=callback)
        capture.start()
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioError(f"audio device {device if device is not None else '(default)'}: {first_line(exc)}") from None

    def stop() -> None:
        if not capture.closed:
            capture.stop()
            capture.close()
            chunks.put(_END)

    return Feed(str(info["name"]), rate, chunks, stop, lambda: overflows[0])


def warm_up(runtime: Runtime, rate: int) -> None:
    """Transcribe one second of silence, so that the first utterance does not pay for loading the
    language model and onnxruntime's first runs."""
    runtime.transcribe(np.zeros(rate, dtype=np.float32), rate)


def listen(stream: Stream, feed: Feed, emit: Callable[[Utterance], None], stop: threading.Event, *,
           partial: Callable[[Transcript], None] | None = None, partial_every: float = 0.5) -> None:
    """Feed ``stream`` from ``feed`` until the source ends or ``stop`` is set, calling ``emit`` with
    each utterance as it ends (and ``partial`` with the open utterance every ``partial_every``
    seconds of audio); then take what is already queued, flush the stream and emit the rest."""
    since_partial = 0.0
    try:
        while True:
            try:
                item = feed.chunks.get(timeout=0.05)
            except queue.Empty:
                if stop.is_set():
                    break
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            for utterance in stream.feed(item):
                emit(utterance)
                since_partial = 0.0
            if partial is not None:
                since_partial += item.shape[0] / feed.rate
                if since_partial >= partial_every:
                    since_partial = 0.0
                    current = stream.partial()
                    if current is not None:
                        partial(current)
            if stop.is_set():
                break
        feed.stop()
        while True:  # what the source had already delivered still counts
            try:
                item = feed.chunks.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, np.ndarray):
                for utterance in stream.feed(item):
                    emit(utterance)
    finally:
        feed.stop()
    for utterance in stream.flush():
        emit(utterance)
