"""Building a word LM (``lm.build_arpa``, ``i3d-edge lm --text``) takes bounded memory by design: the
text is read twice instead of held, and more distinct words or n-grams than the ceilings is one line
naming the text, not gigabytes of counts."""

from __future__ import annotations

import itertools
import string

import pytest

from i3d_edge.errors import ConfigError
from i3d_edge.lm import MAX_DISTINCT_WORDS, MAX_NGRAMS, build_arpa
from tests.conftest import one_line_error, run_cli

SENTENCES = ["one two three", "two three four", "three four one two", "four", "one one two"]


def _words(n: int) -> list[str]:
    """``n`` distinct lower-case words (spellable with the default tokens)."""
    letters = string.ascii_lowercase
    return ["".join(w) for w in itertools.islice(itertools.product(letters, repeat=5), n)]


def test_a_list_an_iterator_and_a_reiterable_give_the_same_model(tmp_path):
    class Twice:  # re-iterable, like TextFiles: read twice, never held
        def __iter__(self):
            return iter(SENTENCES)

    outputs = []
    for i, source in enumerate([SENTENCES, iter(SENTENCES), Twice()]):
        stats = build_arpa(source, tmp_path / f"{i}.arpa", order=3)
        assert stats.sentences == 5 and stats.vocab == 4
        outputs.append((tmp_path / f"{i}.arpa").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_more_distinct_words_than_the_ceiling_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        build_arpa([" ".join(_words(101))], tmp_path / "x.arpa", max_words=100)
    assert str(info.value) == ("build_arpa: the training text has more than 100 distinct words (the ceiling that "
                               "bounds the memory of building a model)")
    assert not (tmp_path / "x.arpa").exists()


def test_more_distinct_ngrams_than_the_ceiling_is_refused(tmp_path):
    words = _words(300)
    text = [" ".join(words[i: i + 30]) for i in range(0, 300, 30)]  # 10 x 30 distinct 3-grams (<s> and </s> included)
    with pytest.raises(ConfigError) as info:
        build_arpa(text, tmp_path / "x.arpa", order=3, max_ngrams=50)
    assert str(info.value).startswith("build_arpa: the training text has more than 50 distinct 3-grams")
    assert build_arpa(text, tmp_path / "y.arpa", order=3, max_ngrams=300).counts[-1] == 300


def test_the_default_ceilings():
    assert (MAX_DISTINCT_WORDS, MAX_NGRAMS) == (1_000_000, 2_000_000)


def test_lm_text_of_a_million_distinct_words_is_one_line_in_bounded_memory(bundle, tmp_path):
    """About 7 MB of distinct words (the audit's case, which took gigabytes): refused with the ceiling,
    in a child limited to 1.5 GiB of address space."""
    text = tmp_path / "words.txt"
    words = _words(MAX_DISTINCT_WORDS + 1)
    text.write_text("\n".join(" ".join(words[i:i + 20]) for i in range(0, len(words), 20)) + "\n")
    proc = run_cli("lm", str(bundle), "--text", str(text))
    one_line_error(proc, f"{text}: the training text has more than 1,000,000 distinct words")
    assert "decoder" not in (bundle / "manifest.json").read_text()
