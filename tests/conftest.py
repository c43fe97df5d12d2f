"""Shared fixtures and helpers: small random checkpoints and their exported bundles (cached per
session), speech-like audio, hostile-file helpers for CLI child processes, bad and odd audio files."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# Set by scripts/mutation.sh only: checkpoints and bundles are built once into this folder and
# reused by every later pytest run (a mutant's run must not re-export the fixtures).
FIXTURE_CACHE = os.environ.get("I3D_EDGE_TEST_FIXTURE_CACHE")


def _cached(root: Path, key: tuple, index: int, suffix: str = "") -> Path:
    """Fixture path for ``key``: in FIXTURE_CACHE (stable name) when set, else under ``root``."""
    if FIXTURE_CACHE:
        return Path(FIXTURE_CACHE) / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", repr(key)) + suffix)
    return root / f"{index}{suffix}"


def small_config(gates: str = "global", layers: int = 2, **kw):  # -> ModelConfig
    from i3d_edge.config import ModelConfig

    base = dict(n_layers=layers, d_model=64, n_heads=2, d_ff=128, conv_channels=8, gate_hidden=16, gates=gates)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory) -> Callable[..., Path]:
    """make_checkpoint(gates="global", layers=2, seed=0, **config) -> path of a random ckpt.pt."""
    pytest.importorskip("torch", reason="checkpoint fixtures need the [export] extra")
    from i3d_edge.models.checkpoint import random_checkpoint, save_checkpoint

    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("ckpts")

    def make(gates: str = "global", layers: int = 2, seed: int = 0, **kw) -> Path:
        key = (gates, layers, seed, tuple(sorted(kw.items())))
        if key not in cache:
            path = _cached(root, key, len(cache), ".pt")
            if not path.is_file():
                save_checkpoint(path, random_checkpoint(small_config(gates, layers, **kw), seed=seed))
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory, make_checkpoint) -> Callable[..., Path]:
    """make_bundle(gates="global", layers=2, quantize=None, monolithic=False, **config) -> bundle dir.

    Bundles are exported (and verified) once per session and shared read-only between tests:
    a test that modifies a bundle must copy it first (shutil.copytree).
    """
    from i3d_edge.export import export_bundle

    cache: dict[tuple, Path] = {}
    root = tmp_path_factory.mktemp("bundles")

    def make(gates: str = "global", layers: int = 2, quantize: str | None = None, monolithic: bool = False,
             seed: int = 0, **kw) -> Path:
        key = (gates, layers, quantize, monolithic, seed, tuple(sorted(kw.items())))
        if key not in cache:
            out = _cached(root, key, len(cache))
            if not (out / "manifest.json").is_file():
                export_bundle(make_checkpoint(gates, layers, seed, **kw), out, quantize=quantize,
                              monolithic=monolithic, force=True)
            cache[key] = out
        return cache[key]

    return make


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like test audio: amplitude-modulated harmonics plus noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 40 * rng.random()
    sig = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + 3 * rng.random()) * t) ** 2
    audio = 0.2 * env * sig + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def block_imports(monkeypatch, *packages: str) -> None:
    """Make ``import`` of each of ``packages`` (and their submodules) fail for the duration of a
    test (modules already imported are hidden)."""
    import importlib.abc

    def blocked(name: str) -> bool:
        return name.split(".")[0] in packages

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ImportError(f"{name} is blocked in this test")
            return None

    for name in list(sys.modules):
        if blocked(name):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Block(), *sys.meta_path])


@pytest.fixture
def block_torch(monkeypatch):
    """``import torch`` fails for the duration of a test."""
    block_imports(monkeypatch, "torch")
    yield


@pytest.fixture
def block_flashlight(monkeypatch):
    """``import flashlight`` (the [lm] extra) fails for the duration of a test."""
    block_imports(monkeypatch, "flashlight")
    yield


def default_signals() -> None:
    """``preexec_fn`` of a child that a test interrupts: SIGINT and SIGTERM as a terminal would
    deliver them (a test run started as a background job ignores SIGINT, and so would its children)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_when(args: list[str], ready: Callable[[], bool], sig: int, env: dict[str, str] | None = None,
                what: str = "the process") -> tuple[int, str, str]:
    """Run ``args``; once ``ready()`` holds (polled every 10 ms, for at most 240 s) send ``sig``.
    Returns (exit status, stdout, stderr); the process never outlives the call."""
    import subprocess
    import time

    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_signals)
    try:
        deadline = time.monotonic() + 240
        while not ready():
            assert proc.poll() is None, f"{what} ended before the signal was due: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{what} never reached the point of the signal"
            time.sleep(0.01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


# ---------------------------------------------------------------------------- hostile files through the CLI
TINY = {"d_model": 32, "d_ff": 64}  # with make_bundle("global", 2): 2 layers, 29 tokens, 4 gates, a few hundred KB
MEMORY_MB = 1536  # address space of every CLI child (a normal transcribe or inspect fits in it)
CLI_TIMEOUT = 180  # seconds; each case takes a few on a loaded 2-core machine


def run_cli(*args: str, cache: Path | None = None, memory_mb: int = MEMORY_MB):  # -> CompletedProcess[str]
    """Run ``i3d-edge ARGS`` in a child with bounded address space and time: a case that tried to
    allocate gigabytes fails with "out of memory" instead of the expected message, a hang fails."""
    import resource
    import subprocess

    limit = memory_mb << 20

    def bound() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache is not None:
        env["I3D_EDGE_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "i3d_edge", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, preexec_fn=bound, env=env, check=False)


def one_line_error(proc, *fragments: str, code: int = 1) -> str:
    """Assert exit status ``code``, no traceback and one ``error:`` line with every fragment; return it."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (a bundle), by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest_json(bundle: Path) -> dict:
    """The bundle's manifest as a raw dict (to damage it)."""
    import json

    return json.loads((bundle / "manifest.json").read_text())


def save_manifest_json(bundle: Path, data: dict) -> None:
    import json

    (bundle / "manifest.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    """A 1.5 s speech-like wav file."""
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "a.wav"
    sf.write(path, speechlike(1.5, seed=4), 16000)
    return path


@pytest.fixture
def bundle(make_bundle, tmp_path) -> Path:
    """A private (writable) copy of the tiny bundle (2 layers, d_model 32)."""
    import shutil

    return Path(shutil.copytree(make_bundle("global", 2, **TINY), tmp_path / "bundle"))


# ---------------------------------------------------------------------------- bad and odd audio files
# case -> (file name, cause fragment of the one-line error)
BAD_AUDIO = {
    "empty": ("empty.wav", "empty file (0 bytes)"),
    "header_only": ("header_only.wav", "empty audio"),
    "one_sample": ("one_sample.wav", "too short"),
    "random_bytes": ("random.wav", "not a readable audio file"),
    "directory": ("folder.wav", "is a directory"),
    "nan": ("nan.wav", "NaN or infinite"),
    "inf": ("inf.wav", "NaN or infinite"),
    "minus_inf": ("minus_inf.wav", "NaN or infinite"),
    "too_loud": ("too_loud.wav", "far outside [-1, 1]"),
    "near_float_max_stereo": ("float_max.wav", "far outside [-1, 1]"),  # finite: not "infinite"
    "missing": ("missing.wav", "no such file"),
    "rate_1hz": ("rate_1hz.wav", "1 Hz is outside the supported"),  # damaged header: no 16000x upsampling
    "name_too_long": ("x" * 300 + ".wav", "cannot access the file"),
}
# case -> (file name, seconds): odd but valid
ODD_AUDIO = {
    "eight_channels": ("eight_channels.wav", 1.5),
    "rate_8k": ("rate_8k.wav", 1.5),
    "rate_48k": ("rate_48k.flac", 1.5),
    "clipped_square": ("clipped_square.wav", 1.5),
    "quiet_1e-9": ("quiet.wav", 1.5),
    "loud_float_1e3": ("loud.wav", 1.5),
}


def _write_bad(d: Path) -> dict[str, Path]:
    import soundfile as sf

    paths = {case: d / name for case, (name, _) in BAD_AUDIO.items()}
    paths["empty"].write_bytes(b"")
    sf.write(paths["header_only"], np.zeros(0, np.float32), 16000)
    sf.write(paths["one_sample"], np.zeros(1, np.float32), 16000)
    sf.write(d / "whole.flac", speechlike(3.0, seed=5), 16000)
    whole = (d / "whole.flac").read_bytes()
    (d / "truncated.flac").write_bytes(whole[: len(whole) // 2])  # readable start: a warning, not an error
    paths["random_bytes"].write_bytes(np.random.default_rng(7).bytes(6000))
    paths["directory"].mkdir()
    for case, value in (("nan", np.nan), ("inf", np.inf), ("minus_inf", -np.inf)):
        x = speechlike(1.0, seed=6)
        x[9000] = value
        sf.write(paths[case], x, 16000, subtype="FLOAT")
    sf.write(paths["too_loud"], speechlike(1.0) * 1e7, 16000, subtype="FLOAT")
    sf.write(paths["rate_1hz"], speechlike(1.0), 1, subtype="PCM_16")
    sf.write(paths["near_float_max_stereo"], np.full((16000, 2), 3e38, np.float32), 16000, subtype="FLOAT")
    return paths


def _write_odd(d: Path) -> dict[str, Path]:
    import soundfile as sf

    paths = {case: d / name for case, (name, _) in ODD_AUDIO.items()}
    eight = np.stack([speechlike(1.5, seed=10 + c) for c in range(8)], axis=1)  # (N, 8)
    sf.write(paths["eight_channels"], eight, 16000, subtype="PCM_16")
    sf.write(paths["rate_8k"], speechlike(1.5, sr=8000, seed=11), 8000, subtype="PCM_16")
    sf.write(paths["rate_48k"], speechlike(1.5, sr=48000, seed=12), 48000, subtype="PCM_24")
    square = np.where(speechlike(1.5, seed=13) > 0, 32767, -32768).astype(np.int16)  # full-scale clipping
    sf.write(paths["clipped_square"], square, 16000, subtype="PCM_16")
    sf.write(paths["quiet_1e-9"], speechlike(1.5, seed=14) * np.float32(1e-9), 16000, subtype="FLOAT")
    loud = speechlike(1.5, seed=15)
    sf.write(paths["loud_float_1e3"], loud / np.abs(loud).max() * 1e3, 16000, subtype="FLOAT")
    return paths


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """{"good": two valid files, "bad": BAD_AUDIO's files, "odd": ODD_AUDIO's files}, generated here
    (plus ``truncated.flac`` beside the bad ones: a damaged file whose start is readable)."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("corpus")
    good = {"a": d / "good_a.wav", "b": d / "good_b.flac"}
    sf.write(good["a"], speechlike(1.2, seed=1), 16000)
    sf.write(good["b"], (speechlike(2.0, sr=44100, seed=2) * 32767).astype(np.int16), 44100)
    return {"good": good, "bad": _write_bad(d), "odd": _write_odd(d)}


# ---------------------------------------------------------------------------- language model files
ARPA_HEAD = "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n"
GOOD_ARPA = (ARPA_HEAD + "-1.0\t<unk>\n-99\t<s>\t-0.5\n-1.0\t</s>\n-1.0\tone\t-0.3\n\n\\2-grams:\n-0.5\t<s> one\n\n"
             "\\end\\\n")
BAD_ARPA: dict[str, tuple[str, str]] = {  # case -> (text, fragment of the one-line error)
    "negative_count": (GOOD_ARPA.replace("ngram 1=4", "ngram 1=-5"), "expected 'ngram 1=COUNT'"),
    "word_of_100000_characters": (GOOD_ARPA.replace("one", "a" * 100_000), "a word may have at most 256"),
    "word_of_300_characters": (GOOD_ARPA.replace("one", "a" * 300), "a word of 300 characters"),
    "nan_probability": (GOOD_ARPA.replace("-1.0\tone", "nan\tone"), "finite log10 values"),
    "infinite_backoff": (GOOD_ARPA.replace("-0.3", "-inf"), "finite log10 values"),
    "count_beyond_the_file": (GOOD_ARPA.replace("ngram 2=1", "ngram 2=1000000000"), "cannot fit in a file"),
    "fewer_lines_than_declared": (GOOD_ARPA.replace("ngram 1=4", "ngram 1=5"), "fewer lines than its declared 5"),
    "no_end": (GOOD_ARPA.replace("\\end\\\n", ""), "expected \\end\\"),
    "unknown_word_in_a_bigram": (GOOD_ARPA.replace("<s> one", "<s> two"), "not a 1-gram"),
    "order_7": (GOOD_ARPA.replace("ngram 2=1\n", "ngram 2=1\n" + "".join(f"ngram {n}=0\n" for n in range(3, 8))),
                "loads orders 2 to 6"),
}


def text_file(folder: Path, content: str, name: str = "text.txt") -> Path:
    path = folder / name
    path.write_text(content)
    return path
