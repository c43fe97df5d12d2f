"""Pure-Python ARPA n-gram builder: Kneser-Ney values by hand, normalisation under KenLM, options."""

from __future__ import annotations

import errno
import gzip
import math
import subprocess
import sys
from pathlib import Path

import pytest

from i3d_edge.errors import ConfigError
from i3d_edge.lm import build_arpa, read_arpa_vocab

# ~30 sentences with repeats, so that every order has counts of 1, 2, 3 and 4+.
CORPUS = (
    ["the cat sat on the mat"] * 4
    + ["the dog sat on the mat"] * 3
    + ["a cat ran to the dog"] * 2
    + ["the dog ran"] * 3
    + ["a dog sat", "the cat ran to a mat", "on the mat sat a cat", "the mat was red"]
    + ["the red cat sat"] * 2
    + ["a red dog ran to the cat", "the cat was on the red mat", "was the cat red", "the dog was"]
    + ["the cat"] * 4
    + ["red", "mat sat on a dog", "the cat sat on a red mat", "a cat", "the dog ran on the mat"]
)


def _read_arpa(path: Path) -> dict[str, tuple[float, float | None]]:
    """words -> (log10 prob, log10 backoff or None), parsed independently of the module under test."""
    entries: dict[str, tuple[float, float | None]] = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            entries[fields[1]] = (float(fields[0]), float(fields[2]) if len(fields) == 3 else None)
    return entries


def _kenlm(path: Path, words: list[str]):
    """flashlight's KenLM over ``words``; returns (lm, dictionary)."""
    kenlm = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    dictionary_mod = pytest.importorskip("flashlight.lib.text.dictionary")
    d = dictionary_mod.Dictionary()
    for w in words:
        d.add_entry(w)
    return kenlm.KenLM(str(path), d), d


@pytest.mark.parametrize(("order", "prune"), [(3, ()), (3, (0, 1)), (3, (1, 1)), (4, (0, 1, 2))])
def test_every_history_sums_to_one_under_kenlm(tmp_path, order, prune):
    path = tmp_path / "lm.arpa"
    stats = build_arpa(CORPUS, path, order=order, prune=prune)
    if prune:  # pruning must really have dropped higher-order n-grams
        assert stats.counts[-1] < build_arpa(CORPUS, tmp_path / "full.arpa", order=order).counts[-1]
    vocab = read_arpa_vocab(path)
    targets = [*vocab, "<unk>"]
    lm, d = _kenlm(path, [*targets, "zebra"])
    # flashlight's KenLM.score returns log10 probabilities (KenLM's native unit, as in the ARPA file):
    # the first word's score equals the ARPA "<s> w" bigram's log10 prob exactly.
    assert lm.score(lm.start(False), d.get_index("the"))[1] == pytest.approx(_read_arpa(path)["<s> the"][0], abs=1e-6)
    histories = [[], ["the"], ["cat"], ["the", "cat"], ["sat", "on"], ["on", "the"], ["red", "was"], ["zebra", "the"]]
    for history in histories:
        state = lm.start(False)
        for w in history:
            state, _ = lm.score(state, d.get_index(w))
        total = sum(10 ** lm.score(state, d.get_index(w))[1] for w in targets) + 10 ** lm.finish(state)[1]
        assert total == pytest.approx(1.0, abs=1e-3), (history, total)


def test_bigram_values_match_kneser_ney_by_hand(tmp_path):
    path = tmp_path / "lm.arpa"
    build_arpa(["a a a a a", "b b b b", "b b b b", "c c c c", "d"], path, order=2)
    arpa = _read_arpa(path)
    # Bigrams (raw counts): <s> a 1, a a 4, a </s> 1, <s> b 2, b b 6, b </s> 2, <s> c 1, c c 3, c </s> 1,
    # <s> d 1, d </s> 1 -> n1=6, n2=2, n3=1, n4=1, Y=6/10: D1=1-2Y*2/6=0.6, D2=2-3Y*1/2=1.1, D3+=3-4Y*1/1=0.6.
    d1, d2, d3 = 0.6, 1.1, 0.6
    # Unigrams (continuation counts, distinct left neighbours): a 2, b 2, c 2, d 1, </s> 4, <unk> 0; n3=0, so
    # the documented fallback discounts 0.5, 1.0, 1.5 apply. Total 11, uniform over a b c d </s> <unk> (6).
    gamma0 = (0.5 * 1 + 1.0 * 3 + 1.5 * 1) / 11
    p = {"a": (2 - 1.0) / 11 + gamma0 / 6, "d": (1 - 0.5) / 11 + gamma0 / 6, "</s>": (4 - 1.5) / 11 + gamma0 / 6}
    p["<unk>"] = gamma0 / 6
    assert p["a"] == pytest.approx(1 / 6) and p["</s>"] == pytest.approx(20 / 66)
    for w, prob in p.items():
        assert arpa[w][0] == pytest.approx(math.log10(prob), abs=1e-5), w
    assert arpa["<s>"][0] == -99
    # History "b": b b 6, b </s> 2 -> c(b)=8, gamma(b) = (D3+ + D2) / 8.
    gamma_b = (d3 + d2) / 8
    assert arpa["b b"][0] == pytest.approx(math.log10((6 - d3) / 8 + gamma_b * p["a"]), abs=1e-5)
    assert arpa["b </s>"][0] == pytest.approx(math.log10((2 - d2) / 8 + gamma_b * p["</s>"]), abs=1e-5)
    assert arpa["b"][1] == pytest.approx(math.log10(gamma_b), abs=1e-5)
    # History "<s>": <s> a 1, <s> b 2, <s> c 1, <s> d 1 -> c=5, gamma = (3 D1 + D2) / 5.
    gamma_s = (3 * d1 + d2) / 5
    assert arpa["<s> b"][0] == pytest.approx(math.log10((2 - d2) / 5 + gamma_s * p["a"]), abs=1e-5)
    assert arpa["<s>"][1] == pytest.approx(math.log10(gamma_s), abs=1e-5)
    assert all(bow is None for k, (_, bow) in arpa.items() if " " in k)  # highest order: no backoff column


def test_frequent_bigram_beats_unseen_and_oov_scores_as_unk(tmp_path):
    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS, path, order=3)
    lm, d = _kenlm(path, [*read_arpa_vocab(path), "<unk>", "zebra"])
    after_the, _ = lm.score(lm.start(False), d.get_index("the"))
    assert lm.score(after_the, d.get_index("cat"))[1] > lm.score(after_the, d.get_index("on"))[1] + 0.5
    unk = lm.score(after_the, d.get_index("<unk>"))[1]
    assert lm.score(after_the, d.get_index("zebra"))[1] == unk
    assert -10 < unk < lm.score(after_the, d.get_index("was"))[1]  # unseen but not impossible


def test_min_count_and_max_vocab_limit_the_vocabulary(tmp_path):
    counts: dict[str, int] = {}
    for s in CORPUS:
        for w in s.split():
            counts[w] = counts.get(w, 0) + 1
    build_arpa(CORPUS, tmp_path / "a.arpa", order=2)
    full = read_arpa_vocab(tmp_path / "a.arpa")
    assert sorted(full) == sorted(counts)
    stats = build_arpa(CORPUS, tmp_path / "b.arpa", order=2, min_count=10)
    assert sorted(read_arpa_vocab(tmp_path / "b.arpa")) == sorted(w for w, c in counts.items() if c >= 10)
    assert stats.vocab == len(read_arpa_vocab(tmp_path / "b.arpa")) < len(full)
    assert "<s> <unk>" in _read_arpa(tmp_path / "b.arpa")  # rare words are counted as <unk>
    stats = build_arpa(CORPUS, tmp_path / "c.arpa", order=2, max_vocab=3)
    top3 = sorted(counts, key=lambda w: (-counts[w], w))[:3]
    assert sorted(read_arpa_vocab(tmp_path / "c.arpa")) == sorted(top3) and stats.vocab == 3
    assert stats.tokens == sum(counts.values()) and stats.sentences == len(CORPUS)


def test_gzip_output_round_trips(tmp_path):
    build_arpa(CORPUS, tmp_path / "lm.arpa", order=3)
    stats = build_arpa(CORPUS, tmp_path / "lm.arpa.gz", order=3)
    raw = (tmp_path / "lm.arpa.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == (tmp_path / "lm.arpa").read_bytes()
    assert read_arpa_vocab(tmp_path / "lm.arpa.gz") == read_arpa_vocab(tmp_path / "lm.arpa")
    assert stats.counts[0] == len(read_arpa_vocab(tmp_path / "lm.arpa")) + 3


def test_building_twice_gives_identical_files(tmp_path):
    for name in ("lm.arpa", "lm.arpa.gz"):
        build_arpa(CORPUS, tmp_path / f"1{name}", order=3, prune=(0, 1))
        build_arpa(iter(CORPUS), tmp_path / f"2{name}", order=3, prune=(0, 1))
        assert (tmp_path / f"1{name}").read_bytes() == (tmp_path / f"2{name}").read_bytes()


@pytest.mark.parametrize("sentences", [[], ["", "   "]])
def test_empty_input_is_a_config_error(tmp_path, sentences):
    with pytest.raises(ConfigError, match="no non-empty sentences"):
        build_arpa(sentences, tmp_path / "lm.arpa")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": 0}, "order must be an integer >= 1"),
        ({"order": -2}, "order must be an integer >= 1"),
        ({"min_count": 0}, "min_count"),
        ({"max_vocab": 0}, "max_vocab"),
        ({"prune": (1,)}, "one threshold per order"),
        ({"prune": (0, -1)}, "thresholds must be integers >= 0"),
        ({"min_count": 1000}, "no word occurs"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_arpa(CORPUS, tmp_path / "lm.arpa", **kwargs)


def test_failed_write_leaves_no_file(tmp_path):
    """The disk fills up while the model is written (a child with a 600-byte file-size limit)."""
    script = ("import resource, signal, sys\n"
              "from i3d_edge.lm import build_arpa\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit raises OSError instead\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))\n"
              "try:\n"
              f"    build_arpa({CORPUS!r}, {str(tmp_path / 'lm.arpa')!r})\n"
              "except OSError as exc:\n"
              "    print(exc.errno)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == str(errno.EFBIG)  # the write failed ...
    assert not list(tmp_path.iterdir())  # ... and left nothing behind


def test_read_arpa_vocab_rejects_non_arpa(tmp_path):
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(ConfigError, match="not an ARPA file"):
        read_arpa_vocab(tmp_path / "x.txt")
    with pytest.raises(ConfigError, match="cannot read"):
        read_arpa_vocab(tmp_path / "missing.arpa")
