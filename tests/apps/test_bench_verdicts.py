"""The PASS / MISS logic behind RESULTS.md, on values on both sides of every limit (no torch, no timing)."""

from __future__ import annotations

import math

import pytest

from benchmarks.targets import TARGETS, check, targets, verdict

# The targets of issue #6, written out here so that a changed operator or limit fails a test.
EXPECTED_TARGETS = {
    "orchestration": ("<=", 1.05),
    "depth_scaling": ("<=", 0.05),
    "vs_eager": (">=", 2.0),
    "int8_speed": (">=", 1.5),
    "int8_size": (">=", 3.5),
    "rss": ("<=", 200.0),
    "cold_start": ("<=", 1.0),
}

# (target, value, limit override, expected verdict)
CASES = [
    ("orchestration", 1.04, None, True), ("orchestration", 1.05, None, True), ("orchestration", 1.06, None, False),
    ("orchestration", 0.5, None, True), ("orchestration", 3.0, None, False),
    ("depth_scaling", 0.29, 0.30, True), ("depth_scaling", 0.30, 0.30, True), ("depth_scaling", 0.31, 0.30, False),
    ("depth_scaling", 0.04, None, True), ("depth_scaling", 0.06, None, False),
    ("vs_eager", 1.99, None, False), ("vs_eager", 2.0, None, True), ("vs_eager", 2.01, None, True),
    ("vs_eager", 0.9, None, False), ("vs_eager", 5.0, None, True),
    ("int8_speed", 1.49, None, False), ("int8_speed", 1.5, None, True), ("int8_speed", 1.51, None, True),
    ("int8_size", 3.49, None, False), ("int8_size", 3.5, None, True), ("int8_size", 3.9, None, True),
    ("rss", 199.9, None, True), ("rss", 200.0, None, True), ("rss", 200.1, None, False), ("rss", 950.0, None, False),
    ("cold_start", 0.99, None, True), ("cold_start", 1.0, None, True), ("cold_start", 1.01, None, False),
    ("cold_start", 1.0, 0.5, False), ("rss", 300.0, 400.0, True),
]


def test_targets_table_is_the_issue_6_table():
    assert {k: (op, limit) for k, (op, limit, _what) in TARGETS.items()} == EXPECTED_TARGETS


@pytest.mark.parametrize(("kind", "value", "limit", "expected"), CASES)
def test_verdict_on_both_sides_of_the_limit(kind, value, limit, expected):
    assert verdict(kind, value, limit) is expected


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_no_finite_value_is_no_verdict(value):
    assert verdict("orchestration", value) is None and verdict("vs_eager", value) is None


def test_a_check_row_states_what_it_judged():
    assert check("rss", "fp32, 10 min file", 150.0) == {
        "target": "rss", "what": TARGETS["rss"][2], "condition": "fp32, 10 min file", "value": 150.0, "op": "<=",
        "limit": 200.0, "pass": True}
    assert check("vs_eager", "(b), 2 s", 1.5, 1.2) == {
        "target": "vs_eager", "what": TARGETS["vs_eager"][2], "condition": "(b), 2 s", "value": 1.5, "op": ">=",
        "limit": 1.2, "pass": True}


def _ratios(base: float) -> dict[str, float]:
    keys = ("c/b", "c_int8/b_int8", "a/b", "a/c", "b/b_int8", "c/c_int8")
    return {k: base + i / 100 for i, k in enumerate(keys)}


def test_every_row_of_a_report_is_judged_with_its_own_value_and_limit():
    mb = 1024 * 1024
    report = {
        "utterances": [{"label": "2 s", "ratios": _ratios(1.0)}],
        "long_file": {"label": "10 min file", "ratios": _ratios(2.0)},
        "sweep": {"seconds": 10.0, "points": [{"fraction": 0.5, "mha": 6, "ffn": 6, "encoder_ratio": 0.56},
                                              {"fraction": 0.25, "mha": 3, "ffn": 3, "encoder_ratio": 0.29}]},
        "sizes": {"ratio_runtime": 3.6, "ratio_monolithic": 3.4},
        "rss": {"audio_seconds": 600.0, "runs": {"fp32": {"peak": 150 * mb}, "fp32-lm": {"peak": 250 * mb}}},
        "cold_start": {"median": {"fp32": {"total_s": 0.8}, "fp32-lm": {"total_s": 1.2}}},
    }
    got = [(t["target"], t["condition"], round(t["value"], 4), t["limit"], t["pass"]) for t in targets(report)]
    assert got == [
        ("orchestration", "fp32, 2 s", 1.0, 1.05, True), ("orchestration", "int8, 2 s", 1.01, 1.05, True),
        ("orchestration", "fp32, 10 min file", 2.0, 1.05, False),
        ("orchestration", "int8, 10 min file", 2.01, 1.05, False),
        ("depth_scaling", "f = 0.5 (6 MHA + 6 FFN), 10 s", 0.56, 0.55, False),
        ("depth_scaling", "f = 0.25 (3 MHA + 3 FFN), 10 s", 0.29, 0.3, True),
        ("vs_eager", "(b), 2 s", 1.02, 2.0, False), ("vs_eager", "(c), 2 s", 1.03, 2.0, False),
        ("vs_eager", "(b), 10 min file", 2.02, 2.0, True), ("vs_eager", "(c), 10 min file", 2.03, 2.0, True),
        ("int8_speed", "(b), 2 s", 1.04, 1.5, False), ("int8_speed", "(c), 2 s", 1.05, 1.5, False),
        ("int8_speed", "(b), 10 min file", 2.04, 1.5, True), ("int8_speed", "(c), 10 min file", 2.05, 1.5, True),
        ("int8_size", "runtime graphs", 3.6, 3.5, True), ("int8_size", "monolithic graph", 3.4, 3.5, False),
        ("rss", "fp32, 10 min file", 150.0, 200.0, True),
        ("rss", "fp32 + LM decoding, 10 min file", 250.0, 200.0, False),
        ("cold_start", "fp32, median", 0.8, 1.0, True), ("cold_start", "fp32 + LM decoding, median", 1.2, 1.0, False),
    ]
    assert targets({**report, "long_file": None, "rss": None, "cold_start": None})[-1]["target"] == "int8_size"
