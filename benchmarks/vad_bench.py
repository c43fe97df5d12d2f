"""Which voice activity detector live transcription uses (issue #27): measured, not assumed.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/vad_bench.py [--data ../shared/data] [--clips 40]
        [--vads silero,silero-lite,webrtc3,webrtc1,ten] [-o table.md] [--json benchmarks/vad.json]

For each real corpus (an4-test, ljspeech-dev, speechocean762-train, fsdd), ``--clips`` recordings
(seeded random choice) are joined with gaps of 0.8-2.0 s, in three conditions: gaps of digital
silence; white noise over the whole stream at 20 dB SNR (speech power over noise power); brown
(1/f^2) noise at 10 dB SNR; white noise at 0 dB SNR; gaps holding one non-speech event each (a beep,
a slam of decaying noise or keyboard clicks, 0.2-0.6 s, as loud as the speech). Every detector runs
through the very same end-pointing (:class:`i3d_edge.runtime.stream.Segmenter`, default settings:
min silence 0.5 s, padding 0.2 s, min speech 0.25 s) and is scored on the utterances it emits:

* **missed speech**: the share of the clips' speech frames (20 ms frames of a clip within 30 dB
  of its loudest frame, measured on the clean clip) that fall in no utterance; **missed clips**:
  clips with less than half their speech frames in utterances;
* **merged clips**: clips that share an utterance with another clip (end of speech missed, so
  a reader waits for the result of the next sentence too);
* **false starts**: utterances that overlap no clip at all (they hold only inserted silence or
  noise), per minute of gap audio;
* **CPU**: process time of the segmenter (the detector dominates) per second of audio.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from i3d_edge.audio import load_audio
from i3d_edge.runtime.stream import Segmenter, StreamSettings

RATE = 16000
CORPORA = {
    "an4-test": "audio",
    "ljspeech-dev": "audio",
    "speechocean762-train": "audio",
    "fsdd": "recordings",
}
CONDITIONS = ("silence", "white 20 dB", "brown 10 dB", "white 0 dB", "events")
FRAME = 320  # 20 ms scoring frames


@dataclass
class Built:
    audio: np.ndarray  # (n,) float32 stream
    clips: list[tuple[int, int]]  # [start, end) of each clip in samples
    speech: np.ndarray  # (n // FRAME,) bool: scoring speech frames


def pick(data: Path, corpus: str, n: int, seed: int) -> list[Path]:
    files = sorted(p for p in (data / corpus / CORPORA[corpus]).iterdir() if p.is_file())
    return random.Random(f"{seed}-{corpus}").sample(files, min(n, len(files)))


def speech_frames(clip: np.ndarray) -> np.ndarray:
    frames = clip[: clip.shape[0] // FRAME * FRAME].reshape(-1, FRAME)  # (F, FRAME)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)  # (F,) dB
    return energy > energy.max() - 30.0


def build(clips: list[np.ndarray], condition: str, seed: int) -> Built:
    rng = np.random.default_rng(seed)
    parts, spans, labels = [], [], []
    pos = 0
    speech_rms = float(np.sqrt(np.mean(np.concatenate(clips).astype(np.float64) ** 2)))

    def event(n: int) -> np.ndarray:
        """A non-speech sound for the gaps: a beep, a slam (decaying noise) or keyboard clicks."""
        t = np.arange(n) / RATE
        kind = rng.integers(3)
        if kind == 0:
            x = np.sin(2 * np.pi * rng.choice([880.0, 1000.0, 2500.0]) * t)
        elif kind == 1:
            x = rng.standard_normal(n) * np.exp(-t / 0.08)
        else:
            x = np.zeros(n)
            for k in range(0, n, RATE // 8):
                m = min(160, n - k)
                x[k: k + m] = rng.standard_normal(m) * np.exp(-np.arange(m) / 30)
        return x

    def gap() -> None:
        nonlocal pos
        n = int(rng.uniform(0.8, 2.0) * RATE) // FRAME * FRAME
        part = np.zeros(n, np.float32)
        if condition == "events":  # one event of 0.2-0.6 s, at least 0.15 s from the speech
            m = int(rng.uniform(0.2, 0.6) * RATE)
            at = int(rng.integers(int(0.15 * RATE), max(int(0.15 * RATE) + 1, n - m - int(0.15 * RATE))))
            x = event(min(m, n - at))
            part[at: at + x.shape[0]] = x * (speech_rms / max(np.sqrt(np.mean(x ** 2)), 1e-9))
        parts.append(part)
        labels.append(np.zeros(n // FRAME, bool))
        pos += n

    gap()
    for clip in clips:
        clip = clip[: clip.shape[0] // FRAME * FRAME]
        parts.append(clip)
        labels.append(speech_frames(clip))
        spans.append((pos, pos + clip.shape[0]))
        pos += clip.shape[0]
        gap()
    audio = np.concatenate(parts)
    if condition not in ("silence", "events"):
        power = float(np.mean(np.concatenate([audio[s:e] for s, e in spans]).astype(np.float64) ** 2))
        snr = {"white 20 dB": 20.0, "brown 10 dB": 10.0, "white 0 dB": 0.0}[condition]
        noise = rng.standard_normal(audio.shape[0])
        if condition.startswith("brown"):
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(801) / 801, mode="same")  # no drift: keep it audible, not DC
        noise *= np.sqrt(power / 10 ** (snr / 10) / np.mean(noise ** 2))
        audio = (audio + noise).astype(np.float32)
    return Built(audio, spans, np.concatenate(labels))


def run_vad(name: str, built: Built, chunk: int = 1600) -> tuple[list[tuple[int, int]], float]:
    seg = Segmenter(StreamSettings(vad=name), RATE)
    spans: list[tuple[int, int]] = []
    t = time.process_time()
    for i in range(0, built.audio.shape[0], chunk):
        spans += [(s.start, s.end) for s in seg.push(built.audio[i: i + chunk])]
    spans += [(s.start, s.end) for s in seg.finish()]
    return spans, time.process_time() - t


def score(built: Built, spans: list[tuple[int, int]], cpu: float) -> dict[str, float]:
    covered = np.zeros(built.speech.shape[0], bool)
    for s, e in spans:
        covered[s // FRAME: -(-e // FRAME)] = True
    speech = built.speech
    missed = float(np.mean(~covered[speech])) if speech.any() else 0.0
    missed_clips = 0
    for s, e in built.clips:
        sl = slice(s // FRAME, e // FRAME)
        if speech[sl].any() and covered[sl][speech[sl]].mean() < 0.5:
            missed_clips += 1
    false = sum(1 for s, e in spans if not any(s < ce and cs < e for cs, ce in built.clips))
    merged = sum(n for n in (sum(1 for cs, ce in built.clips if s < ce and cs < e) for s, e in spans) if n > 1)
    gap_minutes = (built.audio.shape[0] - sum(e - s for s, e in built.clips)) / RATE / 60
    return {"missed_speech": missed, "missed_clips": missed_clips, "clips": len(built.clips),
            "merged_clips": merged, "false_starts": false, "false_per_min": false / gap_minutes,
            "utterances": len(spans),
            "cpu_per_s": cpu / (built.audio.shape[0] / RATE), "seconds": built.audio.shape[0] / RATE}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared corpora (from the repo root)")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--vads", default="silero,silero-lite,webrtc3,webrtc1,ten")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    vads = args.vads.split(",")
    rows: list[dict[str, Any]] = []
    for corpus in CORPORA:
        clips = [load_audio(p, target_rate=RATE) for p in pick(args.data, corpus, args.clips, args.seed)]
        for ci, condition in enumerate(CONDITIONS):
            built = build(clips, condition, args.seed * 100 + ci)
            for vad in vads:
                spans, cpu = run_vad(vad, built)
                row = {"corpus": corpus, "condition": condition, "vad": vad, **score(built, spans, cpu)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    report = render(rows, vads, args)
    if args.output:
        args.output.write_text(report)
    else:
        print(report)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def render(rows: list[dict[str, Any]], vads: list[str], args: argparse.Namespace) -> str:
    lines = [f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; {args.clips} clips per corpus, "
             f"seed {args.seed}.", "",
             "| detector | missed speech | missed clips | merged clips | false starts / min of gaps "
             "| CPU ms per s of audio |",
             "|---|---|---|---|---|---|"]
    for vad in vads:
        mine = [r for r in rows if r["vad"] == vad]
        speech = sum(r["missed_speech"] for r in mine) / len(mine)
        clips = sum(r["missed_clips"] for r in mine)
        total = sum(r["clips"] for r in mine)
        false = sum(r["false_starts"] for r in mine)
        gap_min = sum(r["false_starts"] / r["false_per_min"] if r["false_per_min"] else 0 for r in mine)
        per_min = false / gap_min if gap_min else 0.0
        cpu = sum(r["cpu_per_s"] * r["seconds"] for r in mine) / sum(r["seconds"] for r in mine)
        merged = sum(r["merged_clips"] for r in mine)
        lines.append(f"| {vad} | {100 * speech:.1f}% | {clips}/{total} | {merged}/{total} | {per_min:.2f} ({false}) "
                     f"| {1e3 * cpu:.1f} |")
    lines += ["", "Per corpus and condition (missed speech / missed clips / merged clips / false starts):", "",
              "| corpus | condition | " + " | ".join(vads) + " |", "|---|---|" + "---|" * len(vads)]
    for corpus in CORPORA:
        for condition in CONDITIONS:
            cells = []
            for vad in vads:
                r = next(r for r in rows if r["vad"] == vad and r["corpus"] == corpus and r["condition"] == condition)
                cells.append(f"{100 * r['missed_speech']:.1f}% / {r['missed_clips']} / {r['merged_clips']} / "
                             f"{r['false_starts']}")
            lines.append(f"| {corpus} | {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
