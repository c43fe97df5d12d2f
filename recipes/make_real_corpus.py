#!/usr/bin/env python3
"""Real speech for training: speaker-held-out dev, augmented copies aimed at real recordings.

    python recipes/make_real_corpus.py OUT_DIR \
        --real ../shared/data/speechocean762-train:10 --real ../shared/data/an4-train:6 \
        [--copies 3] [--fast-copies 0] [--jobs 2] [--seed 0]

Each ``--real DIR[:N]`` is a corpus in the project's layout (``transcripts.tsv``, ``audio/``,
optional ``speakers.tsv``); ``N`` whole speakers of it (seeded choice) go to dev, never to train.
Evaluation-only folders (``an4-test``, ``ljspeech-dev``, FSDD) are refused. Writes

    OUT_DIR/train/      every training utterance once, as recorded (16 kHz wav)
    OUT_DIR/train_aug/  --copies augmented copies of each (oversampling with variety), ids ``-a{k}``
    OUT_DIR/train_fast/ --fast-copies faster copies of each (fluent speaking rate), ids ``-f{k}``
    OUT_DIR/dev/        the held-out speakers, as recorded (one corpus per source: dev_{name}/ too)
    OUT_DIR/{split}/meta.tsv, OUT_DIR/corpus.json (speakers held out, augment counts, command)

Train with the synthetic corpus of ``make_corpus.py`` by listing both (``--train synth/train
real/train real/train_aug``): the mix ratio is the number of copies.

Augmentation of a copy (seeded by utterance id and copy, so a rebuild is identical):
speed 0.9/1.0/1.1 (soxr); one channel condition: room reverberation simulated with
pyroomacoustics (image source model, a bank of rooms with RT60 0.15-0.9 s and random
source/mic positions), a telephone band (300-3400 Hz, through 8 kHz), a lossy codec at low
bitrate (MP3 16-32 kbps or Ogg Opus through libsndfile), or none; additive noise at 0-30 dB SNR
(white, pink, brown, or babble made of 3-6 other training utterances of other speakers); gain.
A fast copy is an augmented copy whose edges are trimmed (make_corpus.active_bounds: 35 dB under the loudest) and whose
tempo is raised 1.3-1.9x with the pitch kept (FFmpeg's atempo through PyAV): the learners and AN4's
speakers read at about 6.5 characters a second, fluent read speech (ljspeech-dev) at about 13.
Resumable: existing wavs are kept (the job's spec hash is in the file name's sidecar ``.spec``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import io
import json
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "recipes"):  # the package, and make_corpus.py's signal helpers
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from make_corpus import active_bounds, coloured_noise, resample  # noqa: E402  (after the path set-up)

SR = 16000
EVAL_ONLY = ("an4-test", "ljspeech-dev", "fsdd")  # never trained on (shared/README.md)
N_ROOMS = 48


def read_real(corpus: Path) -> list[tuple[str, Path, str, str]]:
    """(id, audio, normalised text, speaker) of one corpus in the project's layout."""
    from i3d_edge.corpus import read_corpus
    from i3d_edge.tokens import normalize_text

    speakers: dict[str, str] = {}
    spk_tsv = corpus / "speakers.tsv"
    if spk_tsv.is_file():
        for line in spk_tsv.read_text(encoding="utf-8").splitlines()[1:]:
            utt, _, spk = line.partition("\t")
            speakers[utt] = spk.strip()
    out = []
    for utt, path, text in read_corpus(corpus):
        if utt == "id":
            continue
        norm = normalize_text(text)
        if norm:
            out.append((utt, path, norm, speakers.get(utt, utt)))
    return out


def room_bank(seed: int, n: int = N_ROOMS) -> list[np.ndarray]:
    """Room impulse responses simulated with pyroomacoustics (shoebox rooms, image sources)."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    rirs = []
    while len(rirs) < n:
        dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
        rt60 = float(rng.uniform(0.15, 0.9))
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:
            continue
        room = pra.ShoeBox(dims, fs=SR, materials=pra.Material(absorption), max_order=min(max_order, 14))
        src = rng.uniform([0.5, 0.5, 1.0], dims - [0.5, 0.5, 0.8])
        mic = rng.uniform([0.5, 0.5, 0.8], dims - [0.5, 0.5, 1.0])
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float32)[: int(1.2 * SR)]
        rirs.append(h / (np.sqrt(np.sum(h**2)) + 1e-9))
    return rirs


def _codec(x: np.ndarray, kind: str, kbps: int) -> np.ndarray:
    import soundfile as sf

    buf = io.BytesIO()
    if kind == "mp3":
        sf.write(buf, x, SR, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
                 compression_level=1.0 - (kbps - 8) / 312)
    else:
        sf.write(buf, x, SR, format="OGG", subtype="OPUS", compression_level=1.0 - kbps / 256)
    buf.seek(0)
    y, sr = sf.read(buf, dtype="float32")
    y = resample(y if y.ndim == 1 else y.mean(1), sr, SR)
    return y[: len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))


def pick_augment(rng: np.random.Generator) -> dict:
    aug: dict = {"speed": float(rng.choice([0.9, 1.0, 1.1]))}
    channel = rng.choice(["reverb", "phone", "codec", "none"], p=[0.3, 0.15, 0.2, 0.35])
    if channel == "reverb":
        aug["room"] = int(rng.integers(N_ROOMS))
    elif channel == "phone":
        aug["phone"] = True
    elif channel == "codec":
        aug["codec"] = str(rng.choice(["mp3", "opus"]))
        aug["kbps"] = int(rng.choice([16, 24, 32]))
    if rng.random() < 0.7:
        aug["noise"] = str(rng.choice(["white", "pink", "brown", "babble"], p=[0.2, 0.3, 0.15, 0.35]))
        aug["snr"] = round(float(rng.uniform(0.0, 30.0)), 1)
    aug["gain_db"] = round(float(rng.uniform(-20.0, 0.0)), 1)
    return aug


FAST_TEMPO = (1.3, 1.9)


def pick_fast(rng: np.random.Generator) -> dict:
    """A fast copy's augmentation: edges trimmed, tempo in FAST_TEMPO, then a channel as any copy."""
    aug = pick_augment(rng)
    aug["speed"] = 1.0
    aug["tempo"] = round(float(rng.uniform(*FAST_TEMPO)), 2)
    return aug


def augment_label(aug: dict) -> str:
    parts = [f"speed{aug['speed']}"] + ([f"tempo{aug['tempo']}"] if "tempo" in aug else [])
    if "room" in aug:
        parts.append(f"room{aug['room']}")
    if aug.get("phone"):
        parts.append("phone")
    if "codec" in aug:
        parts.append(f"{aug['codec']}{aug['kbps']}k")
    if "noise" in aug:
        parts.append(f"{aug['noise']}{aug['snr']}dB")
    parts.append(f"gain{aug['gain_db']}dB")
    return "+".join(parts)


_ROOMS: list[np.ndarray] = []  # built on the first job that needs a room (seeded: the same in every worker)
_SEED = [0]


def _init(seed: int) -> None:
    _SEED[0] = seed


def room(index: int) -> np.ndarray:
    if not _ROOMS:
        _ROOMS.extend(room_bank(_SEED[0]))
    return _ROOMS[index]


def load16(path: Path) -> np.ndarray:
    from i3d_edge.audio import load_audio

    return load_audio(path, target_rate=SR).astype(np.float32)


def trim_edges(x: np.ndarray, margin: int = SR // 50) -> np.ndarray:
    """``x`` without the silence before and after its speech (make_corpus's active region: 35 dB under
    the loudest), ``margin`` samples of the recording kept each side; ``x`` if nothing is active."""
    a, b = active_bounds(x)
    return x[max(0, a - margin): b + margin] if b > a else x


def change_tempo(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster with its pitch kept: FFmpeg's atempo filter (WSOLA)."""
    import av

    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=SR, layout="mono")
    atempo, sink = graph.add("atempo", f"{factor}"), graph.add("abuffersink")
    source.link_to(atempo)
    atempo.link_to(sink)
    graph.configure()
    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                out.append(graph.pull().to_ndarray().reshape(-1))
            except (av.BlockingIOError, av.EOFError):
                return

    for start in range(0, len(x), 4096):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, start: start + 4096], np.float32),
                                           format="flt", layout="mono")
        frame.sample_rate, frame.pts = SR, start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out) if out else x[:0]


def render(job: dict) -> tuple[str, float]:
    """Write one utterance (unless the same job already wrote it); returns (id, seconds)."""
    import soundfile as sf

    out = Path(job["out"])
    spec = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
    sidecar = out.with_suffix(".spec")
    if out.exists() and sidecar.exists() and sidecar.read_text() == spec:
        return job["id"], sf.info(str(out)).duration
    x = load16(Path(job["src"]))
    aug = job.get("aug")
    if aug:
        rng = np.random.default_rng(zlib.crc32(job["id"].encode()))
        if "tempo" in aug:
            x = change_tempo(trim_edges(x), aug["tempo"])
        x = resample(x, SR * aug["speed"], SR)
        if "room" in aug:
            from scipy.signal import fftconvolve

            h = room(aug["room"])
            y = fftconvolve(x, h)[: len(x) + len(h) // 4]
            x = (y * np.sqrt(np.sum(x**2) / (np.sum(y**2) + 1e-12))).astype(np.float32)
        if aug.get("phone"):
            from scipy.signal import butter, sosfilt

            sos = butter(6, [300, 3400], btype="bandpass", fs=8000, output="sos")
            x = resample(sosfilt(sos, resample(x, SR, 8000)).astype(np.float32), 8000, SR)
        if "noise" in aug:
            p_sig = float(np.mean(x**2)) + 1e-10
            if aug["noise"] == "babble":
                noise = np.zeros(len(x), np.float32)
                for other in job["babble"]:
                    b = load16(Path(other))
                    b = np.tile(b, int(np.ceil(len(x) / max(1, len(b)))))[: len(x)]
                    start = int(rng.integers(0, max(1, len(b))))
                    noise += np.roll(b, start) / (np.std(b) + 1e-9)
                noise /= np.std(noise) + 1e-9
            else:
                noise = coloured_noise(len(x), aug["noise"], rng)
            x = x + noise * np.sqrt(p_sig / 10 ** (aug["snr"] / 10))
        if "codec" in aug:
            x = _codec(x, aug["codec"], aug["kbps"])
        peak = float(np.max(np.abs(x))) + 1e-9
        x = x / peak * 10 ** (aug["gain_db"] / 20) * 0.95
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp.wav")
    sf.write(str(tmp), np.clip(x, -1, 1), SR, subtype="PCM_16")
    os.replace(tmp, out)
    sidecar.write_text(spec)
    return job["id"], len(x) / SR


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--real", action="append", required=True, metavar="DIR[:DEV_SPEAKERS]")
    ap.add_argument("--copies", type=int, default=3, help="augmented copies of each training utterance")
    ap.add_argument("--fast-copies", type=int, default=0,
                    help="faster copies of each training utterance (train_fast/: trimmed, tempo 1.3-1.9x)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train_items: list[tuple[str, Path, str, str]] = []
    dev_items: dict[str, list[tuple[str, Path, str, str]]] = {}
    held_out: dict[str, list[str]] = {}
    for spec in args.real:
        folder, _, n = spec.partition(":")
        path = Path(folder)
        if any(path.resolve().name.startswith(e) for e in EVAL_ONLY):
            ap.error(f"{path}: an evaluation-only corpus, never trained on")
        items = read_real(path)
        speakers = sorted({s for *_, s in items})
        dev_spk = set(rng.choice(speakers, size=min(int(n or 0), len(speakers) - 1), replace=False).tolist())
        held_out[path.name] = sorted(dev_spk)
        dev_items[path.name] = [it for it in items if it[3] in dev_spk]
        train_items += [it for it in items if it[3] not in dev_spk]
    jobs, tsv, meta = [], {}, {}

    def add(split: str, uid: str, src: Path, text: str, spk: str, aug: dict | None = None,
            babble: list[str] | None = None) -> None:
        job = {"id": uid, "src": str(src), "out": str(args.out / split / "audio" / f"{uid}.wav")}
        if aug:
            job["aug"], job["babble"] = aug, babble or []
        jobs.append(job)
        tsv.setdefault(split, []).append(f"{uid}\t{text}")
        meta.setdefault(split, []).append(f"{uid}\t{spk}\t{augment_label(aug) if aug else 'none'}")

    by_spk: dict[str, list[Path]] = {}
    for _, p, _, s in train_items:
        by_spk.setdefault(s, []).append(p)
    spk_list = sorted(by_spk)

    def babble_for(aug: dict, spk: str, urng: np.random.Generator) -> list[str] | None:
        """3-6 utterances of other speakers to babble with, when ``aug`` asks for babble."""
        if aug.get("noise") != "babble":
            return None
        others = [s for s in spk_list if s != spk] or [spk]  # a one-speaker corpus babbles with itself
        picks = urng.choice(others, size=min(int(urng.integers(3, 7)), len(others)), replace=False)
        return [str(by_spk[s][int(urng.integers(len(by_spk[s])))]) for s in picks]

    for uid, p, text, spk in train_items:
        add("train", uid, p, text, spk)
        urng = np.random.default_rng([args.seed, zlib.crc32(uid.encode())])
        for k in range(args.copies):
            aug = pick_augment(urng)
            add("train_aug", f"{uid}-a{k}", p, text, spk, aug, babble_for(aug, spk, urng))
        frng = np.random.default_rng([args.seed, zlib.crc32(uid.encode()), 1])  # apart: train_aug unchanged
        for k in range(args.fast_copies):
            aug = pick_fast(frng)
            add("train_fast", f"{uid}-f{k}", p, text, spk, aug, babble_for(aug, spk, frng))
    for name, items in dev_items.items():
        for uid, p, text, spk in items:
            add("dev", uid, p, text, spk)
            add(f"dev_{name}", uid, p, text, spk)
    t0, done, seconds = time.monotonic(), 0, {}
    with cf.ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(args.seed,)) as pool:
        futures = {pool.submit(render, j): j for j in jobs}
        for fut in cf.as_completed(futures):
            uid, dur = fut.result()
            split = Path(futures[fut]["out"]).parent.parent.name
            seconds[split] = seconds.get(split, 0.0) + dur
            done += 1
            if done % 500 == 0:
                print(f"{done}/{len(jobs)} utterances, {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    for split, lines in tsv.items():
        (args.out / split / "transcripts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (args.out / split / "meta.tsv").write_text("id\tspeaker\taugment\n" + "\n".join(meta[split]) + "\n",
                                                   encoding="utf-8")
    summary = {"command": " ".join(sys.argv), "seed": args.seed, "copies": args.copies,
               "dev_speakers": held_out, "utterances": {k: len(v) for k, v in tsv.items()},
               "hours": {k: round(v / 3600, 3) for k, v in seconds.items()},
               "evaluation_only_never_read": list(EVAL_ONLY)}
    (args.out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
