"""The PASS / MISS logic behind RESULTS.md, on values on both sides of every limit (no torch, no timing)."""

from __future__ import annotations

import math

import pytest

from benchmarks.targets import TARGETS, verdict

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
