"""Property-based tests: audio loader, resampler, log-mel features, CTC decoder, manifest parser.

Each either returns what its contract says or raises the package's typed error, never anything
else. (test_audio.py already checks that the block size never changes the samples and that int16
scaling stays in range; runtime/test_long_audio.py that segments tile the input.)
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from i3d_edge.audio import MIN_SAMPLE_RATE, load_audio, stream_audio
from i3d_edge.config import FeatureConfig, ModelConfig
from i3d_edge.ctc import greedy_decode
from i3d_edge.errors import AudioError, BundleError
from i3d_edge.features import log_mel, num_frames
from i3d_edge.manifest import BUNDLE_FORMAT, BUNDLE_VERSION, Manifest, parse_manifest
from i3d_edge.tokens import TokenTable

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------- audio loader
DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float16", "float32", "float64"]
RATES = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]) | st.integers(MIN_SAMPLE_RATE, 192_000)
MAX_CHANNELS = 64  # audio._MAX_CHANNELS: (C, N) is read as channels-first only when N > 64 >= C


@st.composite
def pcm(draw) -> tuple[np.ndarray, bool]:
    """(samples, clean): integer or float PCM of any layout; ``clean`` when the loader must accept it
    (finite, within the amplitude limit, at least one channel)."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(0, 5000))
    layout = draw(st.sampled_from(["1d", "nc", "cn", "no-channels"]))
    channels = draw(st.sampled_from([1, 2, 3, 8]))
    shape = {"1d": (n,), "nc": (n, channels), "cn": (channels, n), "no-channels": (n, 0)}[layout]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    clean = layout != "no-channels"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    else:
        scale = draw(st.sampled_from([0.0, 1e-9, 0.3, 1.0, 1e3, 1e7]))  # 1e7: beyond the loader's 1e6 limit
        with np.errstate(over="ignore"):
            x = (rng.standard_normal(shape) * scale).astype(dtype)
        special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
        if special is not None and x.size:
            x.flat[int(rng.integers(x.size))] = special
        clean = clean and special is None and scale <= 1e3
    return x, clean and x.size > 0


def frames_of(x: np.ndarray) -> int:
    """Samples per channel, as the loader reads the layout."""
    if x.ndim == 1:
        return x.shape[0]
    rows, cols = x.shape
    return cols if cols > MAX_CHANNELS >= rows else rows


@FAST
@given(pcm(), RATES)
def test_loader_gives_16k_mono_float32_or_a_typed_error(case, rate):
    x, clean = case
    expected = frames_of(x) * 16000 / rate
    try:
        y = load_audio(x, rate, min_samples=1)
    except AudioError as exc:
        assert isinstance(exc, ValueError) and "\n" not in str(exc) and str(exc).startswith("audio array: ")
        assert not (clean and expected >= 2), f"refused clean audio: {exc}"
        return
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
    assert np.isfinite(y).all()
    assert abs(y.size - expected) <= 1, (y.size, expected)


FORMATS = [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_16"), ("ogg", "VORBIS")]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, list[tuple[str, bytes]]]:
    """Small valid stereo files of each format, as (suffix, bytes), and a scratch directory."""
    d = tmp_path_factory.mktemp("damaged")
    t = np.arange(int(0.4 * 22050)) / 22050
    x = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 700 * t)], axis=1)  # (N, 2)
    out = []
    for fmt, subtype in FORMATS:
        path = d / f"source-{subtype}.{fmt}"
        sf.write(path, x, 22050, subtype=subtype)
        out.append((f".{fmt}", path.read_bytes()))
    return d, out


@FAST
@given(which=st.integers(0, len(FORMATS) - 1), edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1,
       max_size=16)), max_size=4), head_bias=st.booleans(), cut=st.none() | st.floats(0, 1))
def test_damaged_file_loads_or_is_an_audio_error(sources, which, edits, head_bias, cut):
    """Bytes overwritten (mostly in the header when ``head_bias``) or the file cut short."""
    scratch, files = sources
    suffix, data = files[which]
    damaged = bytearray(data)
    for where, payload in edits:
        pos = int(where * (min(len(damaged), 128) if head_bias else len(damaged)))
        damaged[pos: pos + len(payload)] = payload
    if cut is not None:
        damaged = damaged[: int(cut * len(damaged))]
    path = scratch / f"damaged{suffix}"
    path.write_bytes(bytes(damaged))
    try:
        y = load_audio(path, min_samples=1)
    except AudioError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: ")
        return
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()


# ---------------------------------------------------------------------------- resampler
@SLOWER
@given(rate=RATES, seconds=st.floats(0.3, 1.5), level=st.floats(-1.0, 1.0), block=st.floats(0.01, 1.0))
def test_resampler_keeps_the_length_ratio_and_dc(rate, seconds, level, block):
    n = int(seconds * rate)
    x = np.full(n, level, dtype=np.float32)
    y = np.concatenate(list(stream_audio(x, rate, min_samples=1, block_seconds=block)))
    assert abs(y.size - n * 16000 / rate) <= 1
    middle = y[y.size // 5: -(y.size // 5)]  # away from the start and end transients
    np.testing.assert_allclose(middle, level, atol=2e-3 * max(abs(level), 1e-3) + 1e-6)


@SLOWER
@given(rate=st.sampled_from([8000, 22050, 44100, 48000]), seconds=st.floats(0.2, 1.0))
def test_resampled_tone_keeps_its_frequency(rate, seconds):
    t = np.arange(int(seconds * rate)) / rate
    y = load_audio(np.sin(2 * np.pi * 1000.0 * t).astype(np.float32), rate, min_samples=1)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.fft.rfftfreq(y.size, 1 / 16000)[spectrum.argmax()] - 1000.0) <= 16000 / y.size + 1


# ---------------------------------------------------------------------------- features
CONFIGS = [FeatureConfig(), FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, win_length=200, hop_length=80,
                                          f_max=3800.0)]


@FAST
@given(cfg=st.sampled_from(CONFIGS), n=st.integers(0, 4000), scale=st.sampled_from([0.0, 1e-9, 1.0, 1e3, 1e6]),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_log_mel_shape_finiteness_and_trailing_samples(cfg, n, scale, seed, data):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(n) * scale).astype(np.float32)
    feats = log_mel(audio, cfg)
    assert feats.shape == (num_frames(n, cfg), cfg.n_mels) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    # samples after the last full frame start no frame and change nothing
    room = cfg.win_length - 1 - n if n < cfg.win_length else cfg.hop_length - 1 - (n - cfg.win_length) % cfg.hop_length
    extra = data.draw(st.integers(0, room), label="extra")
    longer = np.concatenate([audio, (rng.standard_normal(extra) * max(scale, 1.0)).astype(np.float32)])
    np.testing.assert_array_equal(log_mel(longer, cfg), feats)
    if n + room + 1 >= cfg.win_length:  # one more sample starts a frame
        grown = np.concatenate([longer, np.zeros(room - extra + 1, np.float32)])
        assert log_mel(grown, cfg).shape[0] == feats.shape[0] + 1


# ---------------------------------------------------------------------------- CTC decoder
@FAST
@given(ids=st.lists(st.integers(0, 5), max_size=60), vocab=st.integers(6, 9), cut=st.integers(0, 60),
       seed=st.integers(0, 2**32 - 1))
def test_greedy_decode_spans(ids, vocab, cut, seed):
    rng = np.random.default_rng(seed)
    log_probs = rng.standard_normal((len(ids), vocab)).astype(np.float32) - 20.0  # (T, V)
    log_probs[np.arange(len(ids)), ids] = 0.0  # the best path is ``ids``
    length = min(cut, len(ids))
    best = ids[:length]
    spans = greedy_decode(log_probs, length)
    assert [s.id for s in spans] == [k for k, _ in itertools.groupby(best) if k != 0]  # collapse, drop blanks
    assert all(s.id != 0 and 0 <= s.start < s.end <= length for s in spans)
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start  # ordered, never overlapping
    for s in spans:  # each span is exactly one run of its token
        assert set(best[s.start: s.end]) == {s.id}
        assert s.start == 0 or best[s.start - 1] != s.id
        assert s.end == length or best[s.end] != s.id
    assert greedy_decode(log_probs) == greedy_decode(log_probs, len(ids))


# ---------------------------------------------------------------------------- manifest parser
def valid_manifest(layers: int = 2) -> dict[str, Any]:
    """A valid version-1 manifest (no files needed: parse_manifest only checks paths)."""
    cfg = ModelConfig(n_layers=layers, d_model=32, n_heads=2, d_ff=64, gates="global")
    keys = ["frontend", "gate", *cfg.module_names, "head"]
    graphs = {k: f"fp32/{k}.onnx" for k in keys}
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "model_config": cfg.to_dict(),
        "feature_config": FeatureConfig().to_dict(),
        "tokens": list(TokenTable().tokens),
        "gates": {"predictor": "global", "threshold": 0.5, "modules": list(cfg.module_names)},
        "default_variant": "fp32",
        "variants": {"fp32": {"quantization": None, "graphs": graphs}},
        "files": {rel: {"sha256": "0" * 64, "bytes": 1} for rel in graphs.values()},
        "provenance": {},
        "verification": {"status": "skipped"},
    }


LEAVES = (st.none() | st.booleans() | st.integers() | st.integers(-(10**400), 10**400)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
          | st.sampled_from(["global", "local", "none", "fp32", "int8", "fp32/head.onnx", "../x.onnx", "/etc/x",
                             "a\\b", "fp32/\0x", "0" * 64, "x" * 300]))
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=6)


@st.composite
def mutated(draw) -> dict[str, Any]:
    """A valid manifest with 1 to 3 random edits: a value replaced, a key deleted or a key added."""
    data = valid_manifest()
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        while True:  # walk down to a random container
            children = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not children:
                break
            key = draw(st.sampled_from(children))
            if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
                break
            node = node[key]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if isinstance(node, dict):
            if op == "add" or not node:
                node[draw(st.text(max_size=12) | st.sampled_from(["../x.onnx", "/abs.onnx", "layer00.extra"]))] = \
                    draw(JSON)
            else:
                key = draw(st.sampled_from(sorted(node)))
                if op == "delete":
                    del node[key]
                else:
                    node[key] = draw(JSON)
        elif node:
            index = draw(st.integers(0, len(node) - 1))
            if op == "delete":
                del node[index]
            else:
                node[index] = draw(JSON)
        else:
            node.append(draw(JSON))
    return data


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("manifest-root").resolve()


def test_the_valid_manifest_parses(root):
    manifest = parse_manifest(valid_manifest(), root)
    assert isinstance(manifest, Manifest) and manifest.variant().graphs["head"] == "fp32/head.onnx"


@pytest.mark.parametrize("section", ["feature_config", "model_config"])
def test_unknown_config_field_names_stay_on_one_line(root, section):
    data = valid_manifest()
    data[section]["\n"] = 1  # found by the property test below: names are quoted, never printed raw
    with pytest.raises(BundleError, match="unknown field") as info:
        parse_manifest(data, root)
    assert "\n" not in str(info.value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_manifest_is_a_manifest_or_a_bundle_error(root, data):
    before = copy.deepcopy(data)
    try:
        manifest = parse_manifest(data, root)
    except BundleError as exc:
        assert isinstance(exc, ValueError) and "\n" not in str(exc)
        return
    assert isinstance(manifest, Manifest)
    for rel in manifest.files:  # whatever got through is a plain relative path inside the bundle
        parts = PurePosixPath(rel).parts
        assert rel and ".." not in parts and not rel.startswith("/") and "\\" not in rel and "\0" not in rel
        assert manifest.resolve(rel).is_relative_to(root)
    assert data == before  # the parser never edits its input


SEGMENT = st.text(st.characters(blacklist_characters="/\\\0", blacklist_categories=["Cs"]), min_size=1, max_size=8)


@st.composite
def escaping_path(draw) -> str:
    inside = draw(st.lists(SEGMENT, max_size=3))
    rest = draw(st.lists(SEGMENT, min_size=1, max_size=2))
    kind = draw(st.sampled_from(["dotdot", "absolute", "backslash"]))
    if kind == "dotdot":
        ups = [".."] * draw(st.integers(1, 3))
        at = draw(st.integers(0, len(inside)))
        return "/".join([*inside[:at], *ups, *inside[at:], *rest])
    if kind == "absolute":
        return "/" + "/".join([*inside, *rest])
    return "..\\" + "\\".join(rest)


@FAST
@given(rel=escaping_path(), where=st.sampled_from(["files", "graph", "both"]))
def test_escaping_paths_are_always_refused(root, rel, where):
    parts = PurePosixPath(rel).parts
    assume(".." in parts or rel.startswith("/") or "\\" in rel)
    data = valid_manifest()
    if where in ("files", "both"):
        data["files"][rel] = {"sha256": "0" * 64, "bytes": 1}
    if where in ("graph", "both"):
        data["variants"]["fp32"]["graphs"]["head"] = rel
    with pytest.raises(BundleError):
        parse_manifest(data, root)
