"""Word-LM beam-search decoding: the manifest section, attaching an LM, the decoder, Runtime and CLI."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.cli import app
from i3d_edge.ctc import greedy_decode
from i3d_edge.errors import BundleError, ConfigError
from i3d_edge.manifest import load_manifest
from i3d_edge.runtime import Runtime, decoding
from i3d_edge.runtime.decoding import make_decoder
from i3d_edge.runtime.lm_probe import LmSlot
from i3d_edge.tokens import DEFAULT_TOKENS, TokenTable
from tests.conftest import speechlike

pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra (flashlight-text)")

from i3d_edge.bundle import language_model
from i3d_edge.bundle.language_model import attach_language_model

SENTENCES = ["one two three", "two three four", "one two", "three four five", "five four three two one",
             "one one two", "four five", "two one"] * 5
INDEX = {t: i for i, t in enumerate(DEFAULT_TOKENS)}


@pytest.fixture
def lm_bundle(make_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    attach_language_model(bundle, sentences=SENTENCES, order=2, lm_weight=1.0, word_score=0.0, beam_size=16)
    return bundle


def emissions(frames: list[str], confidence: float = 0.9) -> np.ndarray:
    """(T, V) log-probs: each frame's character gets ``confidence``, the rest share the remainder."""
    v = len(DEFAULT_TOKENS)
    probs = np.full((len(frames), v), (1 - confidence) / (v - 1), dtype=np.float64)
    for t, c in enumerate(frames):
        probs[t] = (1 - confidence) / (v - 1)
        probs[t, INDEX[c]] = confidence
    return np.log(probs).astype(np.float32)


def misspelled() -> tuple[list[str], np.ndarray]:
    """Frames whose greedy reading is "wne twu" (acoustically close to "one two", not words of the
    LM): the second-best character of frames 1 and 9 is "o"."""
    frames = ["<blank>", "w", "n", "<blank>", "e", " ", "t", "w", "w", "u", "<blank>"]
    em = emissions(frames, confidence=0.6)
    em[1, INDEX["o"]] = em[9, INDEX["o"]] = np.log(0.3)
    return frames, em


def text_of(spans) -> str:
    return TokenTable().decode(s.id for s in spans)


def test_spans_collapse_blanks_repeats_and_separators():
    b, sp = 0, INDEX[" "]
    path = np.array([sp, b, INDEX["o"], INDEX["o"], b, INDEX["n"], sp, b, sp, INDEX["e"], sp, sp])
    spans = decoding.path_spans(path, b, sp)
    assert [(DEFAULT_TOKENS[s.id], s.start, s.end) for s in spans] == [("o", 2, 4), ("n", 5, 6), (" ", 6, 7),
                                                                         ("e", 9, 10)]


def test_lm_corrects_a_misspelling_greedy_keeps(lm_bundle):
    manifest = load_manifest(lm_bundle)
    decode = make_decoder("lm", LmSlot(manifest))
    # greedy reads "wne twu" (acoustically close to "one two", not words of the LM)
    frames, em = misspelled()
    assert text_of(greedy_decode(em, len(frames))) == "wne twu"
    spans = decode(em, len(frames))
    assert text_of(spans) == "one two"
    assert [DEFAULT_TOKENS[s.id] for s in spans] == list("one two")  # no separator before, between twice, after
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))  # ordered, disjoint frames
    assert spans[0].start >= 1 and spans[-1].end <= len(frames)
    # separators before the first word, between words (two frames) and after the last are not spans
    frames = [" ", "o", "n", "e", " ", "<blank>", " ", "t", "w", "o", " ", " "]
    spans = decode(emissions(frames), len(frames))
    assert [DEFAULT_TOKENS[s.id] for s in spans] == list("one two")
    assert [(s.start, s.end) for s in spans] == [(1, 2), (2, 3), (3, 4), (4, 5), (7, 8), (8, 9), (9, 10)]


def test_only_valid_frames_are_decoded(lm_bundle):
    manifest = load_manifest(lm_bundle)
    decode = make_decoder("lm", LmSlot(manifest))
    em = emissions(["o", "n", "e", " ", "f", "i", "v", "e"])
    assert text_of(decode(em, 8)) == "one five"
    assert text_of(decode(em, 3)) == "one"
    assert decode(em, 0) == []


def three_then(second: tuple[str, str], p: float) -> np.ndarray:
    """(T, V) log-probs: "three " clearly, then a 4-letter word whose letters 2..4 are
    ``second[0]`` with probability ``p`` and ``second[1]`` with 0.98 - p."""
    v = len(DEFAULT_TOKENS)
    rows = []
    frames = [(c, c) for c in ["t", "h", "r", "e", "<blank>", "e", " ", "f"]] + list(zip(*second, strict=True))[1:]
    for a, b in frames:
        row = np.full(v, 0.02 / (v - 2))
        if a == b:
            row[INDEX[a]] = 0.98
        else:
            row[INDEX[a]], row[INDEX[b]] = p, 0.98 - p
        rows.append(np.log(row / row.sum()))
    return np.array(rows, dtype=np.float32)


def test_the_bundle_lm_weight_is_the_one_decoding_uses(lm_bundle):
    """After "three" the LM prefers "four" (seen twice) to "five" (never): with the acoustics
    leaning to "five" (0.6 / 0.38 per letter), a weight of 1.0 keeps "five" and 3.0 picks "four"
    (measured with the bigram LM of SENTENCES)."""
    from i3d_edge.bundle.language_model import set_decoder_settings

    em = three_then(("five", "four"), 0.6)
    manifest = load_manifest(lm_bundle)
    assert manifest.decoder.lm_weight == 1.0
    assert text_of(make_decoder("lm", LmSlot(manifest))(em, len(em))) == "three five"
    assert text_of(make_decoder("lm", LmSlot(manifest), lm_weight=3.0)(em, len(em))) == "three four"
    set_decoder_settings(lm_bundle, lm_weight=3.0)
    manifest = load_manifest(lm_bundle)
    assert text_of(make_decoder("lm", LmSlot(manifest))(em, len(em))) == "three four"  # the bundle's 3.0
    assert text_of(make_decoder("lm", LmSlot(manifest), lm_weight=1.0)(em, len(em))) == "three five"
    assert text_of(make_decoder("lm", LmSlot(manifest), lm_weight=0.0)(em, len(em))) == "three five"


def test_attach_records_a_verified_decoder_section(lm_bundle):
    manifest = load_manifest(lm_bundle)
    assert manifest.decoder is not None and manifest.decoder.lm.startswith("lm/words-")
    assert manifest.decoder.beam_size == 16
    path = manifest.verify(manifest.decoder.lm)  # listed and hashed
    assert path.stat().st_mode & 0o777 == 0o644
    ngram = manifest.lm_ngram
    assert ngram["order"] == 2 and ngram["vocab"] == 5
    assert sorted(p.name for p in (lm_bundle / "lm").iterdir()) == [path.name]  # no temporary files left


def test_reattach_replaces_the_model_and_a_failed_one_changes_nothing(lm_bundle, monkeypatch):
    first = load_manifest(lm_bundle).decoder.lm
    attach_language_model(lm_bundle, sentences=[*SENTENCES, "five five five"], order=3, lm_weight=2.0)
    manifest = load_manifest(lm_bundle)
    assert manifest.decoder.lm != first and manifest.decoder.lm_weight == 2.0
    assert not (lm_bundle / first).exists() and first not in manifest.files
    manifest.verify(manifest.decoder.lm)
    before = (lm_bundle / "manifest.json").read_bytes()
    files = sorted(p.relative_to(lm_bundle) for p in lm_bundle.rglob("*"))

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(language_model, "write_manifest", disk_full)
    with pytest.raises(BundleError, match="No space left"):
        attach_language_model(lm_bundle, sentences=["one two"] * 3, order=2)
    assert (lm_bundle / "manifest.json").read_bytes() == before
    assert sorted(p.relative_to(lm_bundle) for p in lm_bundle.rglob("*")) == files
    load_manifest(lm_bundle).verify(manifest.decoder.lm)


def test_attach_never_writes_through_symlinks(make_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    outside = tmp_path / "outside"
    outside.mkdir()
    (bundle / "lm").symlink_to(outside)
    with pytest.raises(BundleError, match="not a directory inside the bundle"):
        attach_language_model(bundle, sentences=SENTENCES, order=2)
    assert list(outside.iterdir()) == []


def test_arpa_quirks_load_or_fail_on_one_line(make_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    unigram = tmp_path / "unigram.arpa"  # KenLM refuses models below order 2
    unigram.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\tone\n\n\\end\\\n")
    with pytest.raises(ConfigError, match=r"unigram.arpa: not a usable ARPA language model \(.*bigram"):
        attach_language_model(bundle, arpa=unigram)
    with pytest.raises(ConfigError, match="order must be between 2 and 6"):
        attach_language_model(bundle, sentences=SENTENCES, order=1)
    assert not (bundle / "lm").exists()
    dup = tmp_path / "dup.arpa"  # a repeated word: KenLM keeps one, and so does the lexicon
    dup.write_text("\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-1\tone\n-1\tone\n\n"
                   "\\2-grams:\n-1\t<s> one\n\n\\end\\\n")
    attach_language_model(bundle, arpa=dup)
    manifest = load_manifest(bundle)
    assert decoding.LanguageModel(manifest.verify(manifest.decoder.lm), manifest.tokens).vocab_size == 1
    assert manifest.lm_ngram == {"source": "dup.arpa"}


def test_concurrent_lm_loads_leave_stderr_alone(lm_bundle):
    import os
    from concurrent.futures import ThreadPoolExecutor

    manifest = load_manifest(lm_bundle)
    before = os.fstat(2)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(decoding.LanguageModel, manifest.resolve(manifest.decoder.lm), manifest.tokens)
                   for _ in range(6)]
        models = [f.result(timeout=120) for f in futures]  # an exception in a thread fails the test here
    assert [m.vocab_size for m in models] == [5] * 6
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_tampered_lm_is_refused(lm_bundle):
    path = lm_bundle / load_manifest(lm_bundle).decoder.lm
    path.write_text(path.read_text().replace("-", "-0", 1))
    rt = Runtime(lm_bundle, decoder="lm")
    with pytest.raises(BundleError, match="SHA-256"):
        rt.transcribe(speechlike(2.0), 16000)


def test_failed_attach_leaves_the_bundle_unchanged(make_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    before = (bundle / "manifest.json").read_bytes()
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\2-grams:\n-1\t<s> </s>\n"
                   "\\end\\\n")  # no word the model can spell
    with pytest.raises((ConfigError, BundleError)):
        attach_language_model(bundle, arpa=bad)
    with pytest.raises(ConfigError, match="ARPA"):
        attach_language_model(bundle, arpa=tmp_path / "missing.arpa")
    assert (bundle / "manifest.json").read_bytes() == before
    assert not (bundle / "lm").exists()
    with pytest.raises(ConfigError, match="not both"):
        attach_language_model(bundle, arpa=bad, sentences=["one"])


@pytest.mark.parametrize(("field", "value", "match"), [
    ("beam_size", 0, "beam_size"), ("kind", "ctc-magic", "unknown decoder kind"),
    ("lm", "../outside.arpa", "escapes|unlisted"), ("lm_weight", float("nan"), r"in \[0, 1000\]"),
    ("lm_weight", -1, r"in \[0, 1000\]"),
])
def test_invalid_decoder_section_is_a_bundle_error(lm_bundle, field, value, match):
    path = lm_bundle / "manifest.json"
    data = json.loads(path.read_text())
    data["decoder"][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=match):
        load_manifest(lm_bundle)


def test_a_listed_file_that_is_no_arpa_model_is_refused_at_load(lm_bundle):
    path = lm_bundle / "manifest.json"
    data = json.loads(path.read_text())
    data["decoder"]["lm"] = "fp32/head.onnx"  # listed and hashed, but an ONNX graph
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"not a usable ARPA"):
        Runtime(lm_bundle, decoder="lm").transcribe(speechlike(2.0), 16000)


def test_runtime_decoder_choice(lm_bundle, make_bundle, monkeypatch):
    rt = Runtime(lm_bundle)
    assert rt.decoder == "lm"
    result = rt.transcribe(speechlike(3.0), 16000)
    assert result.text and set(result.text.split()) <= {"one", "two", "three", "four", "five"}
    times = [(t.start, t.end) for t in result.tokens]
    assert times == sorted(times) and all(0 <= s <= e <= result.duration + 0.05 for s, e in times)
    greedy = rt.with_options(decoder="greedy")
    assert rt.language_model_loaded and not Runtime(lm_bundle).language_model_loaded
    assert greedy.decoder == "greedy" and greedy.language_model_loaded  # the loaded LM is shared
    assert Runtime(make_bundle("global")).decoder == "greedy"  # no LM in the bundle
    with pytest.raises(ConfigError, match="language model"):
        Runtime(make_bundle("global"), decoder="lm")
    monkeypatch.setattr(decoding, "lm_available", lambda: False)
    assert Runtime(lm_bundle).decoder == "greedy"  # auto without flashlight-text


def test_cli_notes_greedy_fallback(lm_bundle, tmp_path, monkeypatch):
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(2.0), 16000)
    monkeypatch.setattr(decoding, "lm_available", lambda: False)
    res = CliRunner().invoke(app, ["transcribe", "-m", str(lm_bundle), str(wav)])
    assert res.exit_code == 0 and "note: decoding greedily" in res.output
    res = CliRunner().invoke(app, ["transcribe", "-m", str(lm_bundle), "--decoder", "greedy", str(wav)])
    assert res.exit_code == 0 and "note:" not in res.output


@pytest.mark.parametrize("bad", [{"decoder": "beam"}, {"beam_size": 0}, {"lm_weight": -0.5}, {"word_score": True}])
def test_invalid_decoder_options(lm_bundle, bad):
    with pytest.raises(ConfigError):
        Runtime(lm_bundle, **bad)


def test_cli_lm_then_transcribe(make_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(make_bundle("global"), bundle)
    text = tmp_path / "text.tsv"
    text.write_text("".join(f"u{i}\t{s.upper()}!\n" for i, s in enumerate(SENTENCES)))
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(2.0), 16000)
    runner = CliRunner()
    res = runner.invoke(app, ["lm", str(bundle), "--text", str(text), "--order", "2"])
    assert res.exit_code == 0, res.output
    assert "5 words" in res.output
    res = runner.invoke(app, ["inspect", str(bundle)])
    assert res.exit_code == 0 and "(2-gram, 5 words" in res.output and "word LM lm/words-" in res.output
    res = runner.invoke(app, ["transcribe", "-m", str(bundle), "--decoder", "lm", "--format", "json", str(wav)])
    assert res.exit_code == 0, res.output
    words = json.loads(res.output)["text"].split()
    assert words and set(words) <= {"one", "two", "three", "four", "five"}
    res = runner.invoke(app, ["lm", str(bundle)])
    assert res.exit_code == 1 and "--text" in res.output
    lm_file = load_manifest(bundle).decoder.lm
    res = runner.invoke(app, ["lm", str(bundle), "--lm-weight", "0.25", "--word-score", "1.5"])
    assert res.exit_code == 0, res.output
    decoder = load_manifest(bundle).decoder
    assert (decoder.lm, decoder.lm_weight, decoder.word_score, decoder.beam_size) == (lm_file, 0.25, 1.5, 32)
    res = runner.invoke(app, ["lm", str(make_bundle("global")), "--lm-weight", "1"])
    assert res.exit_code == 1 and "no language model" in res.output
    res = runner.invoke(app, ["transcribe", "-m", str(make_bundle("global")), "--decoder", "lm", str(wav)])
    assert res.exit_code == 1 and "language model" in res.output


def test_bench_bundle_completion_keeps_the_lm(lm_bundle, tmp_path):
    from i3d_edge.export.compose import complete_bundle

    derived = complete_bundle(lm_bundle, tmp_path / "derived", [])
    manifest = load_manifest(derived)
    assert "monolithic" in manifest.variant("int8").graphs
    assert manifest.decoder is not None
    manifest.verify(manifest.decoder.lm)


def test_language_model_refusals_name_the_file_once(tmp_path):
    arpa = tmp_path / "words.arpa"
    arpa.write_text("\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-1\tone\n-1\ttwo\n\n"
                    "\\2-grams:\n-1\t<s> one\n\n\\end\\\n")
    no_separator = TokenTable.from_list([t for t in DEFAULT_TOKENS if t != " "])
    with pytest.raises(BundleError) as info:
        decoding.LanguageModel(arpa, no_separator)
    assert str(info.value) == f"{arpa}: the token table has no word separator ' ': no LM decoding"
    text = tmp_path / "text.arpa"
    text.write_text("one two three\n")
    with pytest.raises(BundleError) as info:
        decoding.LanguageModel(text, TokenTable())
    message = str(info.value)
    assert message.startswith(f"{text}: not a usable ARPA language model (") and message.count(str(text)) == 1


def test_words_the_tokens_cannot_spell_stay_out_of_the_lexicon(tmp_path):
    arpa = tmp_path / "words.arpa"  # "r2d2" (digits) and "é" cannot be spelled with the default tokens
    arpa.write_text("\\data\\\nngram 1=6\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-1\tone\n-1\tr2d2\n"
                    "-1\t\u00e9\n-1\ttwo\n\n\\2-grams:\n-1\t<s> one\n\n\\end\\\n")
    lm = decoding.LanguageModel(arpa, TokenTable())
    assert lm.vocab_size == 2  # one, two
    digits = tmp_path / "digits.arpa"
    digits.write_text("\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-1\t42\n-1\t7\n\n"
                      "\\2-grams:\n-1\t<s> 42\n\n\\end\\\n")
    with pytest.raises(BundleError) as info:
        decoding.LanguageModel(digits, TokenTable())
    assert str(info.value) == f"{digits}: no word of the language model can be spelled with the model's tokens"


def test_a_model_kenlm_refuses_is_one_line_with_kenlm_s_reason(tmp_path):
    """KenLM's message is several lines (a source location that 'threw', then the reason): the
    reason is the line kept."""
    unigram = tmp_path / "unigram.arpa"
    unigram.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\tone\n\n\\end\\\n")
    with pytest.raises(BundleError) as info:
        decoding.LanguageModel(unigram, TokenTable())
    assert str(info.value) == (f"{unigram}: not a usable ARPA language model "
                               "(This ngram implementation assumes at least a bigram model. Byte: 18)")


def test_a_one_frame_utterance_is_decoded_and_no_lm_is_a_clear_error(make_bundle, tmp_path):
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "bundle")
    with pytest.raises(ConfigError) as info:
        LmSlot(load_manifest(bundle)).get()
    assert str(info.value) == (f"{load_manifest(bundle).root}: this bundle has no language model "
                               "(attach one with `i3d-edge lm`, or use decoder='greedy')")
    attach_language_model(bundle, sentences=["a b", "b a", "a"], order=2)
    decode = make_decoder("lm", LmSlot(load_manifest(bundle)))
    assert text_of(decode(emissions(["a"]), 1)) == "a"  # one frame, one word
    assert decode(emissions(["a"]), 0) == []


def test_trie_scores_are_the_lm_s_scores_at_the_start_of_a_sentence(tmp_path):
    """Each word's score in the lexicon trie is log10 P(word | <s>) read by hand from the ARPA
    file (a bigram where there is one, else unigram + the backoff of <s>), and a prefix carries
    the best score of its completions (max smearing), as torchaudio's ctc_decoder builds it."""
    arpa = tmp_path / "start.arpa"
    arpa.write_text("\\data\\\nngram 1=5\nngram 2=2\n\n\\1-grams:\n-1.0\t</s>\n-99\t<s>\t-0.5\n-0.3\ta\t-0.2\n"
                    "-0.7\tb\t0\n-1.1\tab\t0\n\n\\2-grams:\n-0.05\t<s> b\n-0.9\t<s> a\n\n\\end\\\n")
    lm = decoding.LanguageModel(arpa, TokenTable())
    a, b = INDEX["a"], INDEX["b"]
    words = {"a": [a], "b": [b], "ab": [a, b]}
    scores = {w: tuple(lm.trie.search([*spelling, lm.separator]).scores) for w, spelling in words.items()}
    assert list(scores) == ["a", "b", "ab"] and all(len(s) == 1 for s in scores.values())
    assert [s[0] for s in scores.values()] == pytest.approx([-0.9, -0.05, -1.6])  # not -0.3 / -0.7 / -1.1
    assert lm.trie.search([a]).max_score == pytest.approx(-0.9)  # best of "a" (-0.9) and "ab" (-1.6)
    assert lm.vocab_size == 3 and lm.words.get_index("ab") != lm.unk


def _best_single_path(log_probs: np.ndarray, symbols: list[int], words: set[str]) -> str:
    """Brute force over every frame-level path of ``symbols`` (T frames, then the separator frame
    the decoder appends): the text of the most probable single path whose words are all in ``words``."""
    best, text = -np.inf, ""
    for path in itertools.product(symbols, repeat=len(log_probs)):
        tokens = [k for i, k in enumerate([*path, INDEX[" "]]) if i == 0 or k != path[i - 1]]  # CTC: repeats
        spoken = "".join(DEFAULT_TOKENS[k] for k in tokens if k != INDEX["<blank>"]).split()  # then blanks
        score = float(sum(log_probs[t, k] for t, k in enumerate(path)))
        if all(w in words for w in spoken) and score > best + 1e-6:
            best, text = score, " ".join(spoken)
    return text


def test_lm_decoding_without_lm_weight_is_the_best_single_path(make_bundle, tmp_path):
    """With lm_weight 0 and word_score 0 the beam search must return the text of the most probable
    single frame-level path over the lexicon (hypotheses merged by max, not by summing their
    probabilities: summing picks another text in about a third of these random cases)."""
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "bundle")
    attach_language_model(bundle, sentences=["a b", "b a", "a a", "b b"], order=2, lm_weight=0.0,
                          word_score=0.0, beam_size=500, beam_threshold=1000.0)
    decode = make_decoder("lm", LmSlot(load_manifest(bundle)))
    symbols = [INDEX[c] for c in ("a", "b", "<blank>", " ")]
    rng = np.random.default_rng(0)
    for _ in range(30):
        log_probs = np.full((4, len(DEFAULT_TOKENS)), -1e4, dtype=np.float32)  # (T, V): only 4 symbols live
        log_probs[:, symbols] = np.log(rng.dirichlet(np.full(4, 0.7), size=4))
        assert text_of(decode(log_probs, 4)) == _best_single_path(log_probs, symbols, {"a", "b"}), log_probs


def test_the_decoder_asked_for_is_the_one_that_runs(lm_bundle):
    """``greedy`` on a bundle with an LM decodes greedily; ``lm`` on a bundle without one is one
    clear error."""
    manifest = load_manifest(lm_bundle)
    frames, em = misspelled()
    assert text_of(make_decoder("greedy", LmSlot(manifest))(em, len(frames))) == "wne twu"
    assert text_of(make_decoder("lm", LmSlot(manifest))(em, len(frames))) == "one two"
    with pytest.raises(ConfigError) as info:
        decoding.resolve_decoder("lm", None)
    assert str(info.value) == "decoder='lm' needs a bundle with a language model (attach one with `i3d-edge lm`)"
    assert decoding.resolve_decoder("auto", None) == "greedy" and decoding.resolve_decoder("greedy", manifest.decoder) \
        == "greedy" and decoding.resolve_decoder("auto", manifest.decoder) == "lm"


def test_without_flashlight_lm_decoding_is_one_clear_error(block_flashlight, lm_bundle):
    assert decoding.lm_available() is False
    with pytest.raises(ConfigError) as info:
        Runtime(lm_bundle, decoder="lm")
    assert str(info.value) == ("language-model decoding needs the flashlight-text package: "
                               "pip install '.[lm]' (in the i3d-edge source folder), or use decoder='greedy'")
    assert Runtime(lm_bundle).decoder == "greedy"  # "auto" falls back
