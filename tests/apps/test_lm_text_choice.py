"""benchmarks/lm_text.py's choice of LM weights: the smallest dev sum among the grid points that pass
issue 31's ship rule on the dev sets (recipes/ship_default_model.py), never a failing one when one passes."""

from __future__ import annotations

from tests.recipes import load_script

lm_text = load_script("benchmarks", "lm_text")

BASE = {"synth_dev": 0.40, "fsdd_dev": 0.38, "speechocean_dev": 0.90, "an4_dev": 0.82,
        "ljspeech_dev": 0.89}  # a test set in the baseline: never read by the choice


def _point(synth: float, an4: float) -> dict[str, float]:
    return {"synth_dev": synth, "fsdd_dev": 0.20, "speechocean_dev": 0.85, "an4_dev": an4}


def test_the_smallest_sum_that_passes_wins_over_a_smaller_one_that_fails() -> None:
    grid = {(1.0, 0.0): _point(0.48, 0.40),   # smallest sum, synthetic dev 20% worse: fails
            (1.3, 1.0): _point(0.44, 0.55),   # passes (44 <= 40 x 1.1)
            (1.6, 1.0): _point(0.43, 0.70)}   # passes, larger sum
    assert lm_text.choose(grid, BASE) == ((1.3, 1.0), grid[(1.3, 1.0)], True)


def test_without_a_passing_point_or_a_baseline_the_smallest_sum_is_taken_and_marked() -> None:
    grid = {(1.0, 0.0): _point(0.48, 0.40), (1.3, 1.0): _point(0.47, 0.83)}  # AN4 dev worse than 0.82
    assert lm_text.choose(grid, BASE) == ((1.0, 0.0), grid[(1.0, 0.0)], False)
    assert lm_text.choose(grid, None) == ((1.0, 0.0), grid[(1.0, 0.0)], False)
