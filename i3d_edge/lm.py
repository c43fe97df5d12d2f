"""Word n-gram language models for CTC beam search, written as ARPA files in pure Python.

:func:`build_arpa` counts the words of normalised sentences and writes an interpolated modified
Kneser-Ney model (Chen & Goodman), the way KenLM's ``lmplz`` builds one, so that KenLM (e.g. through
``flashlight-text``) can load it without ``lmplz`` being installed. Each sentence is padded
``<s> w1 .. wn </s>``; the highest order uses raw counts, lower orders continuation counts (n-grams
that start with ``<s>`` keep raw counts), each order has three discounts D1, D2, D3+, and unigrams
interpolate with the uniform distribution over the vocabulary, ``</s>`` and ``<unk>``.

Pruning drops n-grams whose (adjusted) count is at most the order's threshold, after the counts are
computed; every prefix and suffix of a kept n-gram is kept, and each backoff weight is renormalised
so that every history's distribution, as KenLM computes it, still sums to one.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import ConfigError

__all__ = ["MAX_ARPA_ORDER", "MAX_DISTINCT_WORDS", "MAX_NGRAMS", "MAX_WORD_CHARS",
           "UNK", "NgramStats", "build_arpa", "read_arpa_vocab", "validate_arpa"]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"  # word ids 0, 1, 2; the vocabulary follows, sorted
_SPECIAL = (UNK, BOS, EOS)
# Used when the count-of-counts cannot give D1, D2, D3+ in (0, 1), (0, 2), (0, 3) (tiny corpora).
_DEFAULT_DISCOUNTS = (0.5, 1.0, 1.5)
MIN_ARPA_ORDER, MAX_ARPA_ORDER = 2, 6  # what KenLM (as built in flashlight-text) loads
MAX_WORD_CHARS = 256  # longer words are refused (KenLM crashes on a 100,000-character word)
# Ceilings that bound the memory of build_arpa: about 1 KB per distinct n-gram of the highest order, all
# orders and tables included (measured: 296k trigrams of 50k words, 271 MB), so MAX_NGRAMS is about 2 GB,
# and about 150 bytes per distinct word while counting them.
MAX_DISTINCT_WORDS = 1_000_000  # distinct words of the training text
MAX_NGRAMS = 2_000_000  # distinct n-grams of the highest order
_MAX_ARPA_LINE = 64 + (MAX_ARPA_ORDER + 1) * (MAX_WORD_CHARS + 1)  # characters of one n-gram line

Gram = tuple[int, ...]


@dataclass(frozen=True)
class NgramStats:
    """What :func:`build_arpa` wrote."""

    order: int  # n of the model
    counts: tuple[int, ...]  # number of n-grams written per order, 1-grams first
    vocab: int  # words in the vocabulary, without <s>, </s>, <unk>
    tokens: int  # running words of training text, without sentence marks
    sentences: int


def build_arpa(
    sentences: Iterable[str],
    path: str | os.PathLike[str],
    *,
    order: int = 3,
    min_count: int = 1,
    prune: Sequence[int] = (),
    max_vocab: int | None = None,
    max_words: int = MAX_DISTINCT_WORDS,
    max_ngrams: int = MAX_NGRAMS,
) -> NgramStats:
    """Write an interpolated modified Kneser-Ney ARPA model of ``sentences`` to ``path``.

    sentences: normalised text (lower case, words separated by whitespace); empty ones are skipped.
    order: n of the model (KenLM loads only order >= 2). min_count: words seen fewer times become
    ``<unk>``; max_vocab then keeps the most frequent words (ties alphabetical). prune: one threshold
    per order >= 2, e.g. ``(0, 1)`` drops trigrams seen once. A ``.gz`` path writes gzip. The file
    appears atomically when complete.

    Memory is bounded by design: the sentences are read twice (an iterator is first put in a list;
    pass a list or another re-iterable such as ``TextFiles`` to stream them), and more than
    ``max_words`` distinct words or ``max_ngrams`` distinct n-grams of the highest order is a
    ConfigError (about 1 KB per n-gram, every table included: the default ceilings keep a build under
    about 2.5 GB).
    """
    thresholds = _check_args(order, min_count, prune, max_vocab)
    if isinstance(sentences, str):
        raise ConfigError("build_arpa: expected an iterable of sentences, got a single string")
    texts: Iterable[str] = sentences if iter(sentences) is not sentences else list(sentences)  # read twice
    freq: Counter[str] = Counter()
    n_sentences = 0
    for s in _sentences(texts):
        freq.update(s.split())
        n_sentences += 1
        if len(freq) > max_words:
            raise ConfigError(f"build_arpa: the training text has more than {max_words:,} distinct words "
                              "(the ceiling that bounds the memory of building a model)")
    if not n_sentences:
        raise ConfigError("build_arpa: the training text has no non-empty sentences")
    if BOS in freq or EOS in freq:
        raise ConfigError(f"build_arpa: the training text must not contain {BOS} or {EOS}")
    kept = sorted((w for w, c in freq.items() if c >= min_count and w != UNK), key=lambda w: (-freq[w], w))
    vocab = sorted(kept[:max_vocab])
    if not vocab:
        raise ConfigError(f"build_arpa: no word occurs min_count={min_count} times")
    words = [*_SPECIAL, *vocab]

    adjusted = _adjusted_counts(texts, {w: i for i, w in enumerate(words)}, order, max_ngrams)
    adjusted[1].pop((1,), None)  # <s> is never predicted: written with log10 prob -99
    adjusted[1].setdefault((0,), 0)  # <unk> gets the uniform share even when unseen
    # Top-down: history statistics on the full counts, then pruning (which needs the order above).
    stats = {}
    for n in range(order, 0, -1):
        stats[n] = _history_stats(adjusted[n])
        if thresholds[n] > 0:  # keep the prefix and suffix of every kept (n+1)-gram
            keep = {part for g in adjusted[n + 1] for part in (g[:-1], g[1:])} if n < order else set()
            adjusted[n] = {g: a for g, a in adjusted[n].items() if a > thresholds[n] or g in keep}

    # Bottom-up: interpolated probabilities, then each history's renormalised backoff weight.
    probs: list[dict[Gram, float]] = [{} for _ in range(order + 1)]
    backoffs: list[dict[Gram, float]] = [{} for _ in range(order + 1)]
    total, gamma, table = stats.pop(1)
    uniform = gamma[()] / len(adjusted[1])
    probs[1] = {g: (a - table[min(a, 3)]) / total[()] + uniform for g, a in adjusted[1].items()}
    for n in range(2, order + 1):
        total, gamma, table = stats.pop(n)
        lower = probs[n - 1]
        probs[n] = {
            g: (a - table[min(a, 3)]) / total[g[:-1]] + gamma[g[:-1]] * lower[g[1:]] for g, a in adjusted[n].items()
        }
        adjusted[n] = {}
        seen: defaultdict[Gram, float] = defaultdict(float)
        seen_lower: defaultdict[Gram, float] = defaultdict(float)
        for g, p in probs[n].items():
            seen[g[:-1]] += p
            seen_lower[g[:-1]] += lower[g[1:]]
        backoffs[n - 1] = {h: _backoff(seen[h], seen_lower[h], gamma[h]) for h in seen}
    probs[1][(1,)] = 0.0

    _write_atomic(Path(path), words, probs, backoffs)
    return NgramStats(
        order=order,
        counts=tuple(len(p) for p in probs[1:]),
        vocab=len(vocab),
        tokens=sum(freq.values()),
        sentences=n_sentences,
    )


def _sentences(source: Iterable[str]) -> Iterator[str]:
    """The non-empty sentences of ``source``; anything but a string is a ConfigError."""
    for s in source:
        if not isinstance(s, str):
            raise ConfigError(f"build_arpa: sentences must be strings, got {type(s).__name__}")
        if s and not s.isspace():
            yield s


def read_arpa_vocab(path: str | os.PathLike[str]) -> list[str]:
    """The 1-gram words of an ARPA file (plain or ``.gz``), in file order, without <s>, </s>, <unk>."""
    words: list[str] = []
    in_unigrams = False
    try:
        with _open_text(Path(path)) as f:
            for line in f:
                line = line.strip()
                if line.startswith("\\"):
                    if in_unigrams:
                        return words
                    in_unigrams = line == "\\1-grams:"
                elif in_unigrams and line:
                    fields = line.split()
                    if len(fields) >= 2 and fields[1] not in _SPECIAL:
                        words.append(fields[1])
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the ARPA file ({e})") from e
    raise ConfigError(f"{path}: not an ARPA file (no complete \\1-grams: section)")


def validate_arpa(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """Check an ARPA file (plain or ``.gz``) in Python before KenLM reads it; returns the n-gram counts.

    KenLM trusts its input: a negative count or a huge word crashes the process. Here the header
    must declare orders 1..n (n from 2 to 6) with counts the file can hold, every section must have
    exactly its declared number of lines of ``log10p w1 .. wn [backoff]`` with finite numbers, words
    of at most MAX_WORD_CHARS printable characters, higher-order words among the 1-grams, the
    1-grams ``<s>`` and ``</s>``, and ``\\end\\`` last. Streams the file: memory grows only with
    the 1-gram vocabulary. Raises a one-line ConfigError naming the file, line and cause.
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
        with _open_text(path) as f:
            return _validate_arpa_lines(path, f, size if not _is_gzip(path) else None)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the ARPA file ({e.strerror or e})") from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        raise ConfigError(f"{path}: not a usable ARPA language model (not UTF-8 text)") from None


def _validate_arpa_lines(path: Path, f: IO[str], size: int | None) -> tuple[int, ...]:
    number = 0

    def bad(cause: str) -> ConfigError:
        return ConfigError(f"{path}: not a usable ARPA language model (line {number}: {cause})")

    def next_line() -> str | None:
        """The next non-blank line, stripped; None at the end of the file."""
        nonlocal number
        while True:
            line = f.readline(_MAX_ARPA_LINE + 1)
            if not line:
                return None
            number += 1
            if len(line) > _MAX_ARPA_LINE:
                raise bad(f"longer than {_MAX_ARPA_LINE} characters; a word may have at most {MAX_WORD_CHARS}")
            if line.strip():
                return line.strip()

    if next_line() != "\\data\\":
        raise bad("expected the \\data\\ header")
    counts: list[int] = []
    line = next_line()
    while line is not None and line.startswith("ngram "):
        order, _, declared = line[6:].partition("=")
        if order.strip() != str(len(counts) + 1) or not declared.strip().isdigit() or len(declared) > 12:
            raise bad(f"expected 'ngram {len(counts) + 1}=COUNT' with COUNT >= 0, got {line[:60]!r}")
        counts.append(int(declared))
        line = next_line()
    if not MIN_ARPA_ORDER <= len(counts) <= MAX_ARPA_ORDER:
        raise bad(f"order {len(counts)}; KenLM needs at least a bigram model and loads orders {MIN_ARPA_ORDER} "
                  f"to {MAX_ARPA_ORDER}")
    if counts[0] < 2 or (size is not None and sum(counts) * 4 > size):
        raise bad(f"declared counts {counts} cannot fit in a file of {size} bytes")
    unigrams: set[str] = set()
    for n, count in enumerate(counts, start=1):
        if line != f"\\{n}-grams:":
            raise bad(f"expected the \\{n}-grams: section, got {(line or 'the end of the file')[:60]!r}")
        for _ in range(count):
            line = next_line()
            fields = (line or "").split()
            if line is None or line.startswith("\\"):
                raise bad(f"the {n}-grams section has fewer lines than its declared {count}")
            if not n + 1 <= len(fields) <= n + 1 + (n < len(counts)):
                backoff = "an optional backoff" if n < len(counts) else "no backoff"
                raise bad(f"expected a log10 probability, {n} word(s) and {backoff}")
            numbers = [fields[0], *fields[n + 1:]]
            try:
                values = [float(v) for v in numbers]
            except ValueError:
                raise bad(f"not a number: {' '.join(numbers)[:60]!r}") from None
            if not all(math.isfinite(v) for v in values) or values[0] > 0:
                raise bad(f"probabilities must be finite log10 values <= 0, got {' '.join(numbers)[:60]!r}")
            words = fields[1: n + 1]
            for w in words:
                if len(w) > MAX_WORD_CHARS or not w.isprintable():
                    raise bad(f"a word of {len(w)} characters (at most {MAX_WORD_CHARS} printable ones)")
            if n == 1:
                unigrams.add(words[0])  # a repeated 1-gram is fine: KenLM keeps one
            elif not all(w in unigrams for w in words):
                raise bad(f"a word that is not a 1-gram: {' '.join(words)[:60]!r}")
        if n == 1 and not {BOS, EOS} <= unigrams:
            raise bad(f"the 1-grams lack {BOS} or {EOS}")
        line = next_line()
    if line != "\\end\\":
        raise bad(f"expected \\end\\ after the {len(counts)}-grams, got {(line or 'the end of the file')[:60]!r}")
    return tuple(counts)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _check_args(order: int, min_count: int, prune: Sequence[int], max_vocab: int | None) -> list[int]:
    """Validated arguments; returns the prune threshold of each order, indexed by n (0 for 1-grams)."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ConfigError(f"build_arpa: order must be an integer >= 1, got {order!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"build_arpa: min_count must be an integer >= 1, got {min_count!r}")
    if max_vocab is not None and (isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < 1):
        raise ConfigError(f"build_arpa: max_vocab must be None or an integer >= 1, got {max_vocab!r}")
    prune = list(prune)
    if prune and len(prune) != order - 1:
        raise ConfigError(f"build_arpa: prune needs one threshold per order 2..{order}, got {prune}")
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in prune):
        raise ConfigError(f"build_arpa: prune thresholds must be integers >= 0, got {prune}")
    return [0, 0, *prune] if prune else [0] * (order + 1)


def _adjusted_counts(texts: Iterable[str], index: dict[str, int], order: int, max_ngrams: int
                     ) -> list[dict[Gram, int]]:
    """Per order n (list index n): raw counts for the highest order, continuation counts below.

    An n-gram that does not start with <s> always has a left neighbour, so the (n+1)-grams list all
    of them; n-grams that start with <s> have none and keep their raw counts.
    """
    top: Counter[Gram] = Counter()
    starts: list[Counter[Gram]] = [Counter() for _ in range(order)]  # <s>-initial n-grams, n < order
    get = index.get
    for s in _sentences(texts):
        ids = [1, *[get(w, 0) for w in s.split()], 2]
        top.update(zip(*[ids[i:] for i in range(order)], strict=False))
        if len(top) > max_ngrams:
            raise ConfigError(f"build_arpa: the training text has more than {max_ngrams:,} distinct {order}-grams "
                              "(the ceiling that bounds the memory of building a model; use fewer words "
                              "(max_vocab, min_count), a lower order or less text)")
        for n in range(1, min(order, len(ids) + 1)):
            starts[n][tuple(ids[:n])] += 1
    adjusted: list[dict[Gram, int]] = [{} for _ in range(order + 1)]
    adjusted[order] = top
    for n in range(order - 1, 0, -1):
        counts = Counter(g[1:] for g in adjusted[n + 1])
        counts.update(starts[n])  # disjoint keys: <s> only ever starts a sentence
        adjusted[n] = counts
    return adjusted


def _history_stats(grams: dict[Gram, int]) -> tuple[dict[Gram, int], dict[Gram, float], tuple[float, ...]]:
    """Per history h: c(h) = sum of counts, gamma(h) = discounted mass / c(h); and (0, D1, D2, D3+)."""
    table = (0.0, *_discounts(grams.values()))
    total: defaultdict[Gram, int] = defaultdict(int)
    gamma: defaultdict[Gram, float] = defaultdict(float)
    for g, a in grams.items():
        total[g[:-1]] += a
        gamma[g[:-1]] += table[min(a, 3)]
    for h, c in total.items():
        gamma[h] /= c
    return total, gamma, table


def _discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney D1, D2, D3+ from the count-of-counts n1..n4 (defaults when undefined)."""
    n = Counter(c for c in counts if c <= 4)
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0 < dk < k for k, dk in enumerate(d, 1)):
            return d
    return _DEFAULT_DISCOUNTS


def _backoff(seen: float, seen_lower: float, gamma: float) -> float:
    """bow(h) = (1 - sum of kept p(w|h)) / (1 - sum of the same words' p(w|h')); gamma(h) if degenerate."""
    left, left_lower = 1.0 - seen, 1.0 - seen_lower
    return left / left_lower if left > 0 and left_lower > 1e-12 else gamma


def _log10(p: float) -> float:
    return math.log10(p) if p > 0 else -99.0


def _write_atomic(path: Path, words: list[str], probs: list[dict[Gram, float]], bows: list[dict[Gram, float]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            # mtime=0 and no file name in the gzip header keep the output byte-identical between runs.
            stream: gzip.GzipFile | io.BufferedWriter = raw
            if path.suffix == ".gz":
                stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            with io.TextIOWrapper(stream, encoding="utf-8", newline="\n") as f:
                f.write("\\data\\\n")
                f.writelines(f"ngram {n}={len(probs[n])}\n" for n in range(1, len(probs)))
                for n in range(1, len(probs)):
                    f.write(f"\n\\{n}-grams:\n")
                    p, bow = probs[n], bows[n]
                    for g in sorted(p):
                        tail = f"\t{math.log10(bow[g]):.6f}\n" if g in bow else "\n"
                        f.write(f"{_log10(p[g]):.6f}\t{' '.join(map(words.__getitem__, g))}{tail}")
                f.write("\n\\end\\\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _open_text(path: Path) -> IO[str]:
    gz = _is_gzip(path)
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")
