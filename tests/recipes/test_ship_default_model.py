"""recipes/ship_default_model.py's LM text: training text only, the real transcripts weighed as asked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.recipes import load_recipe


def _corpora(tmp_path: Path) -> tuple[Path, Path]:
    corpus, real = tmp_path / "corpus", tmp_path / "real"
    for folder in (corpus / "train", corpus / "dev", real / "train", real / "dev"):
        folder.mkdir(parents=True)
    pools = {"ljspeech": [["Raw one.", "book text one"]], "fortunes": [["Raw two.", "fortune text"]],
             "held_out": [["Never.", "held out sentence"]]}
    (corpus / "text_pools.json.gz").write_bytes(gzip.compress(json.dumps({"pools": pools}).encode()))
    (corpus / "train" / "transcripts.tsv").write_text("s1\tsynthetic train\n", encoding="utf-8")
    (corpus / "dev" / "transcripts.tsv").write_text("d1\tsynthetic dev\n", encoding="utf-8")
    (real / "train" / "transcripts.tsv").write_text("r1\ta b c\nr2\tgo left\n", encoding="utf-8")
    (real / "dev" / "transcripts.tsv").write_text("r3\treal dev\n", encoding="utf-8")
    return corpus, real


@pytest.mark.parametrize("repeats", [0, 1, 3])
def test_lm_text_weighs_the_real_transcripts_as_asked(tmp_path, repeats):
    ship = load_recipe("ship_default_model")
    corpus, real = _corpora(tmp_path)
    text = list(ship.lm_sentences(corpus, real, repeats))
    assert text == ["book text one", "fortune text", "synthetic train", *(["a b c", "go left"] * repeats)]
    assert list(ship.lm_sentences(corpus, real)) == list(ship.lm_sentences(corpus, real, ship.REAL_TEXT_REPEATS))


def test_ship_rule_real_sets_must_improve_synthetic_ones_may_slip_ten_percent():
    ship = load_recipe("ship_default_model")
    base = {"an4_dev": 0.80, "fsdd_dev": 0.38, "synth_dev": 0.40}
    assert ship.ship_rule_failures({"an4_dev": 0.79, "fsdd_dev": 0.30, "synth_dev": 0.44}, base) == []
    assert ship.ship_rule_failures({"an4_dev": 0.80, "fsdd_dev": 0.30, "synth_dev": 0.40}, base) == ["an4_dev"]
    assert ship.ship_rule_failures({"an4_dev": 0.5, "fsdd_dev": 0.30, "synth_dev": 0.4401}, base) == ["synth_dev"]
    assert ship.ship_rule_failures({"an4_dev": 0.5, "synth_dev": 0.1}, base) == ["fsdd_dev"]
