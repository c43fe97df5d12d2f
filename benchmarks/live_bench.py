"""Live transcription: latency, CPU while silent, real-time factor, depth per utterance, queueing (issue #27).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/live_bench.py --data ../shared/data [--utterances 40]
        [--json benchmarks/live.json] [--parts latency,silent,continuous,queueing] [--precisions fp32,int8]

The default model (embedded bundle, default decoder), default stream settings (Silero VAD).

1. **Latency** from the VAD's end-of-speech decision to the final result, for real utterances of
   1-10 s (ljspeech-dev and an4-test recordings, each after 1 s of silence), fed in 100 ms chunks
   as fast as they are taken, at fp32 and int8: median and p95, overall and by length; and the
   process time of the call that ended each utterance (VAD of 100 ms + the transcription), which
   is the latency on an idle core when onnxruntime runs one thread (``--threads 1``, the default).
2. **CPU while silent**: process time per second of audio over 60 s of digital silence and 60 s
   of a quiet room (white noise at -60 dBFS), the stream as a whole and its VAD alone; and the
   whole live loop as ``i3d-edge listen --input FILE --realtime`` runs it (``file_source`` paced at
   real time, ``listen``'s consumer thread, the stream, its VAD): the process's CPU seconds (every
   thread) per wall second while it plays ``--silent-seconds`` of each.
3. **Real-time factor under continuous speech**: ljspeech-dev read back to back with 0.3 s
   pauses, process time / audio time.
4. **Queueing**: a file of utterances 0.6 s apart played at real time through ``file_source`` and
   ``listen`` (the CLI's loop): every sample reaches the stream, and the largest backlog (seconds
   of audio waiting in the queue while an utterance was being transcribed).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from i3d_edge.apps.live import file_source, listen, warm_up
from i3d_edge.audio import load_audio
from i3d_edge.runtime import Runtime
from i3d_edge.runtime.stream import Segmenter, StreamSettings

RATE = 16000
CHUNK = RATE // 10
PARTS = ("latency", "silent", "continuous", "queueing")
SETTINGS: dict[str, Any] = {}  # stream settings other than the defaults (--vad)


def clips(data: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    files = sorted((data / "ljspeech-dev" / "audio").iterdir()) + sorted((data / "an4-test" / "audio").iterdir())
    out = []
    for path in random.Random(seed).sample(files, len(files)):
        audio = load_audio(path, target_rate=RATE)
        if 1.0 <= audio.shape[0] / RATE <= 10.0:
            out.append(audio)
        if len(out) == n:
            break
    return out


def joined(parts: list[np.ndarray], gap: float) -> np.ndarray:
    silence = np.zeros(int(gap * RATE), np.float32)
    return np.concatenate([silence] + [x for p in parts for x in (p, silence)])


def feed_all(rt: Runtime, audio: np.ndarray, cpu: list[float] | None = None) -> tuple[list[Any], float]:
    """Feed in 100 ms chunks; ``cpu`` gets the process time of each call that ended an utterance."""
    t = time.process_time()
    out: list[Any] = []
    with rt.stream(sample_rate=RATE, **SETTINGS) as stream:
        for i in range(0, audio.shape[0], CHUNK):
            c = time.process_time()
            got = stream.feed(audio[i: i + CHUNK])
            if got and cpu is not None:
                cpu.append(time.process_time() - c)
            out += got
        out += stream.flush()
    return out, time.process_time() - t


def paced_cpu(rt: Runtime, audio: np.ndarray) -> dict[str, float]:
    """The live loop of ``i3d-edge listen --input FILE --realtime`` over ``audio`` (written to a WAV
    file, played at real time): the process's CPU seconds, every thread, per wall second and per
    second of audio (the same when the loop keeps up; per audio second is what it costs on a core
    it has to itself, when a loaded machine starves it and the wall time stretches)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "quiet.wav"
        sf.write(path, audio, RATE, subtype="FLOAT")
        emitted: list[Any] = []
        with rt.stream(sample_rate=RATE, **SETTINGS) as stream:
            w, c = time.perf_counter(), time.process_time()
            listen(stream, file_source(str(path), realtime=True), emitted.append, threading.Event())
            cpu, wall = time.process_time() - c, time.perf_counter() - w
    seconds = audio.shape[0] / RATE
    return {"cpu_s": cpu, "wall_s": wall, "audio_s": seconds, "cpu_per_wall_s": cpu / wall,
            "cpu_per_audio_s": cpu / seconds, "utterances": len(emitted)}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--utterances", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads (1: CPU time = time on an idle core)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which parts, comma-separated: {','.join(PARTS)}")
    ap.add_argument("--precisions", default="fp32,int8", help="latency at these precisions; the first one "
                    "also for the other parts")
    ap.add_argument("--silent-seconds", type=float, default=60.0, help="length of each silent input")
    ap.add_argument("--vad", default=None, help="the stream's voice activity detector (default: the stream's)")
    args = ap.parse_args()
    if args.vad:
        SETTINGS["vad"] = args.vad
    parts = args.parts.split(",")
    precisions = args.precisions.split(",")
    if not set(parts) <= set(PARTS) or not set(precisions) <= {"fp32", "int8"}:
        ap.error(f"--parts: some of {','.join(PARTS)}; --precisions: fp32 and/or int8")
    needs_speech = {"latency", "continuous", "queueing"} & set(parts)
    utterances = clips(args.data, args.utterances) if needs_speech else []
    report: dict[str, Any] = {"utterances": len(utterances)}
    lines = []

    # 1. latency, per precision
    if "latency" in parts:
        lines += ["| precision | utterances | latency median | p95 | 1-3 s: median | 3-6 s | 6-10 s | CPU time median "
                  "| p95 | modules per utterance (min-max, mean) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for precision in precisions if "latency" in parts else ():
        rt = Runtime(precision=precision, threads=args.threads)
        warm_up(rt, RATE)
        cpu: list[float] = []
        got, _ = feed_all(rt, joined(utterances, 1.0), cpu)
        lat = [1e3 * u.latency for u in got]
        cpu_ms = [1e3 * c for c in cpu]
        by = {}
        for lo, hi in ((1, 3), (3, 6), (6, 10.5)):
            sel = [1e3 * u.latency for u in got if lo <= u.end - u.start < hi]
            by[f"{lo}-{hi}"] = statistics.median(sel) if sel else float("nan")
        modules = [u.modules_executed for u in got]
        report[precision] = {"latency_ms": lat, "cpu_ms": cpu_ms, "durations": [u.end - u.start for u in got],
                             "modules": modules, "decoder": rt.decoder}
        lines.append(f"| {precision} ({rt.decoder}) | {len(got)} | {statistics.median(lat):.0f} ms | "
                     f"{pct(lat, 95):.0f} ms | " + " | ".join(f"{v:.0f} ms" for v in by.values()) +
                     f" | {statistics.median(cpu_ms):.0f} ms | {pct(cpu_ms, 95):.0f} ms "
                     f"| {min(modules)}-{max(modules)}, {statistics.mean(modules):.1f} of {rt.modules_total} |")
        print(lines[-1], flush=True)

    # 2. CPU while silent
    rt = Runtime(precision=precisions[0], threads=args.threads)
    warm_up(rt, RATE)
    if "silent" in parts:
        rng = np.random.default_rng(0)
        n = int(args.silent_seconds * RATE)
        quiet = {"digital silence": np.zeros(n, np.float32),
                 "room at -60 dBFS": (rng.standard_normal(n) * 10 ** (-60 / 20)).astype(np.float32)}
        vad_name = StreamSettings(**SETTINGS).vad
        lines += ["", f"| while silent ({args.silent_seconds:g} s, {precisions[0]}, VAD {vad_name}) | "
                  "stream fed 100 ms chunks, CPU per audio second | its VAD alone | whole live loop paced at real "
                  "time, CPU per audio second | utterances |", "|---|---|---|---|---|"]
        for name, audio in quiet.items():
            got, cpu = feed_all(rt, audio)
            seg = Segmenter(StreamSettings(**SETTINGS), RATE)
            t = time.process_time()
            for i in range(0, audio.shape[0], CHUNK):
                seg.push(audio[i: i + CHUNK])
            vad = time.process_time() - t
            paced = paced_cpu(rt, audio)
            seconds = audio.shape[0] / RATE
            report[name] = {"seconds": seconds, "stream_cpu_per_s": cpu / seconds, "vad_cpu_per_s": vad / seconds,
                            "utterances": len(got), "paced": paced}
            lines.append(f"| {name} | {100 * cpu / seconds:.2f}% | {100 * vad / seconds:.2f}% | "
                         f"{100 * paced['cpu_per_audio_s']:.2f}% ({paced['cpu_s']:.2f} s CPU; wall "
                         f"{paced['wall_s']:.1f} s, {100 * paced['cpu_per_wall_s']:.2f}% of it) | "
                         f"{len(got)} + {paced['utterances']} |")
            print(lines[-1], flush=True)

    # 3. RTF under continuous speech
    if "continuous" in parts:
        continuous(rt, utterances, report, lines)
    if "queueing" in parts:
        queueing(rt, utterances, report, lines)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def continuous(rt: Runtime, utterances: list[np.ndarray], report: dict[str, Any], lines: list[str]) -> None:
    reading = joined(utterances, 0.3)
    got, cpu = feed_all(rt, reading)
    rtf = cpu / (reading.shape[0] / RATE)
    report["continuous"] = {"rtf": rtf, "seconds": reading.shape[0] / RATE, "utterances": len(got)}
    lines += ["", f"Continuous speech ({reading.shape[0] / RATE:.0f} s read back to back, 0.3 s pauses, "
              f"{len(got)} utterances): real-time factor **{rtf:.3f}** (process time / audio time, "
              f"{rt.options.precision})."]
    print(lines[-1], flush=True)


def queueing(rt: Runtime, utterances: list[np.ndarray], report: dict[str, Any], lines: list[str]) -> None:
    burst = joined(utterances[:8], 0.6)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "burst.wav"
        sf.write(path, burst, RATE, subtype="FLOAT")
        feed = file_source(str(path), realtime=True)
        backlog: list[float] = []
        emitted: list[Any] = []

        def emit(u: Any) -> None:
            emitted.append(u)
            backlog.append(feed.chunks.qsize() * 0.1)

        with rt.stream(sample_rate=RATE, **SETTINGS) as stream:
            listen(stream, feed, emit, threading.Event())
            fed = stream.seconds
    report["queueing"] = {"seconds": burst.shape[0] / RATE, "fed": fed, "max_backlog_s": max(backlog, default=0.0),
                          "utterances": len(emitted)}
    lines += ["", f"Queueing: {burst.shape[0] / RATE:.1f} s of utterances 0.6 s apart played at real time: "
              f"{fed:.3f} s reached the stream ({len(emitted)} utterances), the largest backlog when an utterance "
              f"was emitted was {max(backlog, default=0.0):.1f} s of audio."]


if __name__ == "__main__":
    main()
