"""Runtime vs the torch model: log-prob parity, gate decisions, skipped sessions, batching, threads."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from i3d_edge.errors import AudioError, BundleError, ConfigError
from i3d_edge.features import batch_features, log_mel, normalize
from i3d_edge.runtime import Runtime
from tests.conftest import speechlike

torch = pytest.importorskip("torch")

from i3d_edge.models.checkpoint import load_checkpoint  # noqa: E402

PARITY_ATOL = 1e-4  # runtime vs torch log-probs (fp32)
BATCH_ATOL = 1e-5  # batched vs one-by-one log-probs (same runtime)
PROB_ATOL = 1e-5  # gate probabilities, runtime vs torch
GATES = ("global", "local", "none")
KNOBS = {
    "t0": {"threshold": 0.0},
    "t0.5": {"threshold": 0.5},
    "t0.9": {"threshold": 0.9},
    "full": {"full_depth": True},
    "k1": {"max_modules": 1},
    "k2-t0": {"max_modules": 2, "threshold": 0.0},
}
LAYERS = 3  # 6 gated modules: enough for rows to disagree


def clips() -> list[np.ndarray]:
    """Four 16 kHz clips of different lengths and kinds, so that rows choose different modules."""
    t = np.arange(int(3.1 * 16000)) / 16000
    noise = 0.3 * np.random.default_rng(5).standard_normal(int(0.7 * 16000))
    chirp = 0.5 * np.sin(2 * np.pi * (200 + 300 * t) * t)
    return [speechlike(1.0), noise.astype(np.float32), speechlike(2.3, seed=1), chirp.astype(np.float32)]


def batch(fc):
    """Normalised (B, T, F) features and (B,) lengths of :func:`clips`."""
    return batch_features([normalize(log_mel(c, fc), fc) for c in clips()])


def valid_max_abs(a: np.ndarray, b: np.ndarray, lens: np.ndarray) -> float:
    """Largest |a - b| over the valid frames of (B, T, V) arrays."""
    return max(float(np.abs(a[i, :n] - b[i, :n]).max()) for i, n in enumerate(lens))


@pytest.fixture(scope="module")
def reference(make_checkpoint):
    """Torch eval outputs for every (gates, knob), computed once (before any torch blocking)."""
    out = {}
    for gates in GATES:
        ckpt = load_checkpoint(make_checkpoint(gates, LAYERS))
        model = ckpt.build_model()
        feats, lens = batch(ckpt.feature_config)
        for name, kw in KNOBS.items():
            with torch.no_grad():
                ref = model(torch.from_numpy(feats), torch.from_numpy(lens), **kw)
            out[gates, name] = (feats, lens, ref.log_probs.numpy(), ref.lens.numpy(), ref.gate_probs.numpy(),
                                ref.gates.numpy() > 0.5)
    return out


@pytest.mark.parametrize("knob", list(KNOBS))
@pytest.mark.parametrize("gates", GATES)
def test_log_probs_and_gates_match_torch(make_bundle, reference, gates, knob):
    feats, lens, ref_lp, ref_lens, ref_probs, ref_gates = reference[gates, knob]
    rt = Runtime(make_bundle(gates, LAYERS), **KNOBS[knob])
    out = rt.forward(feats, lens)
    np.testing.assert_array_equal(out.lens, ref_lens)
    assert out.log_probs.shape == ref_lp.shape and out.gates.shape == (len(clips()), 2 * LAYERS)
    assert valid_max_abs(out.log_probs, ref_lp, out.lens) <= PARITY_ATOL
    np.testing.assert_array_equal(out.gates, ref_gates)
    np.testing.assert_allclose(out.gate_probs, ref_probs, atol=PROB_ATOL, rtol=0)
    expected_runs = {m: int(out.gates[:, i].any()) for i, m in enumerate(rt.module_names)}
    assert {m: rt.session_runs[m] for m in rt.module_names} == expected_runs


def test_the_knobs_actually_skip(reference):
    """Guard against vacuous parity: the gated cases must skip some modules and keep others."""
    for gates in ("global", "local"):
        for knob in ("t0.5", "t0.9", "k1"):
            on = reference[gates, knob][5]
            assert 0 < on.sum() < on.size, (gates, knob)
            if knob != "k1":  # a local budget of one keeps the first open module: often the same
                assert len({tuple(row) for row in on}) > 1, f"{gates} {knob}: rows should choose different modules"
        assert reference[gates, "full"][5].all()
        assert (reference[gates, "k1"][5].sum(axis=1) <= 1).all()


class Recorder:
    """Stands in for an InferenceSession: records (batch, time) of every run; optionally refuses."""

    def __init__(self, session, refuse: bool = False) -> None:
        self.session, self.refuse, self.calls = session, refuse, []

    def run(self, names, feeds):
        if self.refuse:
            raise AssertionError("a skipped module's session was run")
        self.calls.append(feeds["x"].shape[:2])
        return self.session.run(names, feeds)


@pytest.mark.parametrize("gates", ["global", "local"])
def test_skipped_modules_are_never_run_and_rows_run_only_where_needed(make_bundle, gates):
    rt = Runtime(make_bundle(gates, LAYERS), threshold=0.5)
    feats, lens = batch(rt.feature_config)
    before = rt.session_runs.copy()
    out = rt.forward(feats, lens)
    plan, x_lens = out.gates, out.lens  # (B, 2N): what this input selects, (B,)
    assert not plan.all(axis=0).all() and plan.any(axis=0).any(), "the input should skip some module, run some"
    for i, name in enumerate(rt.module_names):
        rows = np.flatnonzero(plan[:, i])
        if rows.size == 0:  # never run: no session call counted
            assert name not in out.module_runs and rt.session_runs[name] == before[name]
        else:  # one run, on the selected rows only, time trimmed to their longest
            assert out.module_runs[name] == (rows.size, int(x_lens[rows].max())), name
            assert rt.session_runs[name] == before[name] + 1
    again = rt.forward(feats, lens)  # the same input selects and runs the same
    np.testing.assert_array_equal(again.gates, plan)
    assert dict(again.module_runs) == dict(out.module_runs)


def test_lazy_mode_loads_only_the_sessions_used(make_bundle):
    rt = Runtime(make_bundle("global", LAYERS), threshold=0.9, lazy=True)
    assert set(rt.loaded_sessions) == {"frontend", "gate", "head"}
    feats, lens = batch(rt.feature_config)
    out = rt.forward(feats, lens)
    used = {m for i, m in enumerate(rt.module_names) if out.gates[:, i].any()}
    assert 0 < len(used) < len(rt.module_names)
    assert set(rt.loaded_sessions) == {"frontend", "gate", "head"} | used
    eager = Runtime(make_bundle("global", LAYERS), threshold=0.9)
    np.testing.assert_array_equal(eager.forward(feats, lens).log_probs, out.log_probs)


@pytest.mark.parametrize("gates", GATES)
def test_batch_equals_one_by_one(make_bundle, gates):
    rt = Runtime(make_bundle(gates, LAYERS), threshold=0.3)
    feats, lens = batch(rt.feature_config)
    full = rt.forward(feats, lens)
    for i, n in enumerate(lens):
        one = rt.forward(feats[i: i + 1, :n], lens[i: i + 1])
        t = int(one.lens[0])
        assert full.lens[i] == t
        np.testing.assert_allclose(full.log_probs[i, :t], one.log_probs[0, :t], atol=BATCH_ATOL, rtol=0)
        np.testing.assert_array_equal(full.gates[i], one.gates[0])
        np.testing.assert_allclose(full.gate_probs[i], one.gate_probs[0], atol=1e-6, rtol=0)
    together = rt.transcribe_batch(clips(), 16000)
    alone = [rt.transcribe(c, 16000) for c in clips()]
    for a, b in zip(together, alone, strict=True):
        assert (a.text, a.tokens, a.executed_modules) == (b.text, b.tokens, b.executed_modules)
        assert a.gate_probs == pytest.approx(b.gate_probs, abs=1e-6)


def test_transcript_fields(make_bundle):
    rt = Runtime(make_bundle("global", LAYERS))
    clip = speechlike(2.3, seed=1)
    t = rt.transcribe(clip, 16000)
    assert t.duration == pytest.approx(2.3, abs=1e-3)
    assert t.modules_total == 2 * LAYERS == len(t.gate_probs) and list(t.gate_probs) == list(rt.module_names)
    assert t.modules_executed == len(t.executed_modules)
    assert list(t.executed_modules) == [m for m in rt.module_names if m in t.executed_modules]
    assert set(t.timings) >= {"load", "features", "frontend", "gates", "modules", "head", "decode", "total"}
    assert t.timings["total"] == pytest.approx(sum(v for k, v in t.timings.items() if k != "total"))
    assert "".join(tok.token for tok in t.tokens).strip() == t.text
    for tok in t.tokens:  # 40 ms encoder frames
        assert 0 <= tok.start < tok.end <= t.duration
        assert round(tok.start / 0.04, 6).is_integer() and round(tok.end / 0.04, 6).is_integer()
    assert len(t.segments) == 1 and t.segments[0].text == t.text
    assert t.tokens, "this clip must emit tokens (seeded random weights)"
    d = json.loads(json.dumps(t.to_dict()))  # values as a JSON reader sees them
    assert d["text"] == t.text and d["modules_total"] == t.modules_total
    assert d["tokens"] == [{"token": tok.token, "start": pytest.approx(tok.start, abs=5e-4),
                            "end": pytest.approx(tok.end, abs=5e-4),
                            "confidence": pytest.approx(tok.confidence, abs=5e-4)} for tok in t.tokens]
    assert all(0.0 < tok.confidence <= 1.0 for tok in t.tokens)
    assert d["gate_probs"] == pytest.approx(dict(t.gate_probs), abs=1e-6)  # 6 decimals, not fewer
    assert len({round(p, 3) for p in t.gate_probs.values()}) > 1  # the probabilities differ
    assert d["executed_modules"] == list(t.executed_modules) and d["modules_executed"] == len(t.executed_modules)
    assert d["duration"] == pytest.approx(2.3, abs=5e-4) and d["rtf"] == pytest.approx(t.rtf, abs=1e-4)
    assert d["timings"] == pytest.approx(dict(t.timings), abs=1e-6)
    seg = t.segments[0]
    assert d["segments"] == [{"start": 0.0, "end": pytest.approx(2.3, abs=5e-4), "text": t.text,
                              "gate_probs": pytest.approx(dict(seg.gate_probs), abs=1e-6),
                              "executed_modules": list(seg.executed_modules)}]
    assert dict(seg.gate_probs) == pytest.approx(dict(t.gate_probs), abs=1e-6)  # one segment: the same


def test_edge_silence_reads_the_audio_with_silence_around_it_and_times_exclude_it(make_checkpoint, make_bundle,
                                                                                  tmp_path):
    """A bundle whose feature config adds 0.15 s of silence at each end transcribes a clip as the same
    weights without it transcribe the clip with that silence written into the audio; its token times
    are those times less 0.15 s, inside the clip."""
    from dataclasses import replace

    from i3d_edge.export import export_bundle
    from i3d_edge.models.checkpoint import save_checkpoint

    ckpt = load_checkpoint(make_checkpoint("global", LAYERS))
    ckpt.feature_config = replace(ckpt.feature_config, edge_silence=0.15)
    save_checkpoint(tmp_path / "edge.pt", ckpt)
    export_bundle(tmp_path / "edge.pt", tmp_path / "edge", force=True)
    edge, plain = Runtime(tmp_path / "edge"), Runtime(make_bundle("global", LAYERS))
    assert edge.feature_config.edge_silence == 0.15
    clip = speechlike(1.7, seed=3)
    silence = np.zeros(2400, np.float32)
    got, want = edge.transcribe(clip, 16000), plain.transcribe(np.concatenate([silence, clip, silence]), 16000)
    assert want.tokens, "this clip must emit tokens (seeded random weights)"
    assert got.text == want.text and got.executed_modules == want.executed_modules
    assert dict(got.gate_probs) == pytest.approx(dict(want.gate_probs), abs=1e-6)
    assert got.duration == pytest.approx(1.7, abs=1e-3)
    for g, w in zip(got.tokens, want.tokens, strict=True):
        assert g.token == w.token and g.confidence == pytest.approx(w.confidence, abs=1e-6)
        assert g.start == pytest.approx(min(max(w.start - 0.15, 0.0), 1.7), abs=1e-6)
        assert g.end == pytest.approx(min(max(w.end - 0.15, 0.0), 1.7), abs=1e-6)
        assert 0.0 <= g.start <= g.end <= got.duration


def test_edge_silence_knob_overrides_the_bundles(make_checkpoint, make_bundle, tmp_path):
    """``edge_silence`` given to the Runtime reads the audio as a bundle exported with that edge silence
    does (older bundles can use it); 0 turns a bundle's own off; out of range is one ConfigError."""
    from dataclasses import replace

    from i3d_edge.export import export_bundle
    from i3d_edge.models.checkpoint import save_checkpoint

    ckpt = load_checkpoint(make_checkpoint("global", LAYERS))
    ckpt.feature_config = replace(ckpt.feature_config, edge_silence=0.15)
    save_checkpoint(tmp_path / "edge.pt", ckpt)
    export_bundle(tmp_path / "edge.pt", tmp_path / "edge", force=True)
    edge, plain = Runtime(tmp_path / "edge"), Runtime(make_bundle("global", LAYERS))
    knob = Runtime(make_bundle("global", LAYERS), edge_silence=0.15)
    assert knob.feature_config.edge_silence == 0.15 and plain.feature_config.edge_silence == 0.0
    clip = speechlike(1.7, seed=3)
    pairs = ((knob, edge), (edge.with_options(edge_silence=0), plain), (plain.with_options(edge_silence=0.15), edge))
    for got, want in pairs:
        a, b = got.transcribe(clip, 16000), want.transcribe(clip, 16000)
        assert b.tokens, "this clip must emit tokens (seeded random weights)"
        assert a.text == b.text and a.executed_modules == b.executed_modules
        assert [t.start for t in a.tokens] == pytest.approx([t.start for t in b.tokens], abs=1e-6)
    with_pad, without = edge.transcribe(clip, 16000), plain.transcribe(clip, 16000)  # the pad matters here
    assert dict(with_pad.gate_probs) != pytest.approx(dict(without.gate_probs), abs=1e-6)
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(ConfigError, match="edge_silence must be 0-1 seconds"):
            Runtime(make_bundle("global", LAYERS), edge_silence=bad)


def test_vanilla_runs_every_module(make_bundle):
    rt = Runtime(make_bundle("none", LAYERS), threshold=0.9, max_modules=1)
    t = rt.transcribe(speechlike(1.5), 16000)
    assert t.modules_executed == t.modules_total == 2 * LAYERS
    assert set(t.gate_probs.values()) == {1.0}


def test_with_options_shares_sessions(make_bundle):
    rt = Runtime(make_bundle("global", LAYERS))
    strict = rt.with_options(threshold=0.9)
    assert strict.session_runs is rt.session_runs and strict.threshold == 0.9 and rt.threshold == 0.5
    feats, lens = batch(rt.feature_config)
    assert strict.forward(feats, lens).gates.sum() < rt.forward(feats, lens).gates.sum()
    with pytest.raises(ConfigError, match="threads"):
        rt.with_options(threads=2)


@pytest.mark.parametrize("lazy", [False, True])
def test_one_runtime_shared_by_eight_threads(make_bundle, monkeypatch, lazy):
    bundle = make_bundle("local", LAYERS)
    clips = [speechlike(0.5 + 0.37 * i, seed=i) for i in range(24)]
    sequential = Runtime(bundle, threshold=0.4).transcribe_batch(clips, 16000, batch_size=1)
    rt = Runtime(bundle, threshold=0.4, threads=1, lazy=lazy)
    at_load = rt.sessions_created.copy()
    start = threading.Barrier(8)

    def work(i: int):
        start.wait()
        return [(k, rt.transcribe(clips[k], 16000)) for k in range(i, len(clips), 8)]

    with ThreadPoolExecutor(8) as pool:
        results = dict(kv for part in pool.map(work, range(8)) for kv in part)
    for k, ref in enumerate(sequential):
        got = results[k]
        assert (got.text, got.tokens, got.executed_modules, got.gate_probs) == \
            (ref.text, ref.tokens, ref.executed_modules, ref.gate_probs)
    assert set(rt.sessions_created.values()) == {1}  # a lazy session is created once, whatever the race
    created = set(rt.sessions_created) - set(at_load)  # by the threads
    assert set(rt.loaded_sessions) == set(rt.sessions_created)
    assert created == (set(rt.loaded_sessions) & set(rt.module_names) if lazy else set())
    assert created or not lazy


def test_padding_beyond_the_longest_row_changes_nothing(make_bundle):
    rt = Runtime(make_bundle("global", LAYERS), threshold=0.5)
    feats, lens = batch(rt.feature_config)
    padded = np.concatenate([feats, np.zeros((feats.shape[0], 40, feats.shape[2]), np.float32)], axis=1)
    a, b = rt.forward(feats, lens), rt.forward(padded, lens)
    np.testing.assert_array_equal(a.gates, b.gates)
    assert valid_max_abs(a.log_probs, b.log_probs, a.lens) <= BATCH_ATOL
    for i, name in enumerate(rt.module_names):  # each module ran on its rows' valid frames, never the padding
        rows = np.flatnonzero(b.gates[:, i])
        assert b.module_runs.get(name) == ((rows.size, int(b.lens[rows].max())) if rows.size else None), name
    assert dict(b.module_runs) == dict(a.module_runs)


@pytest.mark.parametrize(("gates", "full_depth"), [("global", False), ("global", True), ("local", False),
                                                    ("none", False)])
def test_forward_output_types_and_stage_times(make_bundle, gates, full_depth):
    rt = Runtime(make_bundle(gates, LAYERS), threshold=0.5, full_depth=full_depth)
    feats, lens = batch(rt.feature_config)
    started = time.perf_counter()
    out = rt.forward(feats, lens)
    wall = time.perf_counter() - started
    b, n = feats.shape[0], rt.modules_total
    assert out.log_probs.dtype == np.float32 and out.log_probs.shape[:2] == (b, int(out.lens.max()))
    assert out.lens.dtype == np.int64 and out.lens.shape == (b,)
    assert out.gate_probs.dtype == np.float32 and out.gate_probs.shape == (b, n)
    assert out.gates.dtype == np.bool_ and out.gates.shape == (b, n)
    if full_depth or gates == "none":
        assert out.gates.all()
    assert set(out.timings) == {"frontend", "gates", "modules", "head"}
    assert all(0.0 <= t for t in out.timings.values()) and sum(out.timings.values()) <= wall


def test_inputs_of_other_dtypes_are_converted(make_bundle):
    rt = Runtime(make_bundle("global", LAYERS), threshold=0.5)
    feats, lens = batch(rt.feature_config)  # float32, int64
    ref = rt.forward(feats, lens)
    out = rt.forward(feats.astype(np.float64), lens.astype(np.int32))  # converted, not refused by onnxruntime
    np.testing.assert_array_equal(out.gates, ref.gates)
    np.testing.assert_allclose(out.log_probs, ref.log_probs, atol=1e-5)
    shortest = np.array([7], np.int64)  # 7 log-mel frames: exactly one encoder frame, accepted
    assert rt.forward(feats[:1, :7], shortest).lens.tolist() == [1]


def test_a_waveform_input_shorter_than_the_receptive_field_is_refused(waveform_bundle):
    rt = Runtime(waveform_bundle)
    field = 140  # the test model's conv stack (kernels 10-3-3-2, strides 5-4-4-4), by hand:
    # one frame of the last layer needs 2 inputs, then 1*4+3 = 7, 6*4+3 = 27, 26*5+10 = 140 samples
    assert rt.manifest.model_config.waveform.receptive_field == field
    assert rt.forward(np.zeros((1, field, 1), np.float32), np.array([field])).lens.tolist() == [1]
    with pytest.raises(AudioError, match=f"between {field} \\(one encoder frame\\)"):
        rt.forward(np.zeros((1, field, 1), np.float32), np.array([field - 1]))


@pytest.mark.parametrize(("shape", "lens", "match"), [
    ((2, 50, 80), [50, 50, 50], r"^features_lens: expected shape \(2,\) with batch >= 1, got \(3,\)$"),
    ((2, 50, 40), [50, 50], r"^features: expected shape \(batch, frames, 80\), got \(2, 50, 40\)$"),
    ((2, 50, 80), [50, 6], r"^features_lens: each length must be between 7 \(one encoder frame\) and 50 frames, "
                           r"got \[50, 6\]$"),
    ((2, 50, 80), [51, 50], r"between 7 \(one encoder frame\) and 50 frames, got \[51, 50\]$"),
    ((0, 50, 80), [], "batch >= 1"),
])
def test_forward_refuses_bad_input(make_bundle, shape, lens, match):
    from i3d_edge.errors import AudioError

    rt = Runtime(make_bundle("global", LAYERS))
    with pytest.raises(AudioError, match=match):
        rt.forward(np.zeros(shape, np.float32), np.array(lens, np.int64))


@pytest.mark.parametrize("kwargs", [
    {"threshold": 1.0}, {"threshold": -0.1}, {"threshold": "0.5"}, {"max_modules": -1}, {"max_modules": 1.5},
    {"max_modules": True}, {"threads": 0}, {"providers": ["NoSuchExecutionProvider"]}, {"providers": []},
    {"precision": "fp16"}, {"batch_size": 0}, {"segment_seconds": 1}, {"full_depth": "yes"},
])
def test_bad_knobs_are_config_errors(make_bundle, kwargs):
    with pytest.raises(ConfigError) as info:
        Runtime(make_bundle("global", LAYERS), **kwargs)
    assert "\n" not in str(info.value)


def test_missing_precision_variant(make_bundle):
    with pytest.raises(BundleError, match="no 'int8' graphs"):
        Runtime(make_bundle("global", LAYERS), precision="int8")


def test_int8_variant_runs(make_bundle):
    bundle = make_bundle("global", LAYERS, quantize="int8")
    rt = Runtime(bundle, precision="int8", full_depth=True)
    feats, lens = batch(rt.feature_config)
    out = rt.forward(feats, lens)
    ref = Runtime(bundle, precision="fp32", full_depth=True).forward(feats, lens)
    assert np.isfinite(out.log_probs).all()
    assert valid_max_abs(np.exp(out.log_probs), np.exp(ref.log_probs), out.lens) < 0.25  # same model, coarser weights


def test_no_default_model_is_a_clear_error(monkeypatch, tmp_path):
    import i3d_edge.runtime.runtime as module

    monkeypatch.setattr(module, "DEFAULT_BUNDLE", tmp_path / "none")
    with pytest.raises(BundleError, match="no default model is embedded"):
        Runtime()
