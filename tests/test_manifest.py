"""The bundle manifest contract (``manifest.py``) through its public API: the one writer, the
reader's file checks and the decoder section, each value and message compared exactly."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from i3d_edge.errors import BundleError, ConfigError
from i3d_edge.limits import LIMITS
from i3d_edge.manifest import (
    DEFAULT_BEAM_THRESHOLD,
    MANIFEST_NAME,
    TOKENS_HASH_FIELD,
    DecoderSpec,
    Manifest,
    load_manifest,
    parse_manifest,
    tokens_sha256,
    write_manifest,
)
from i3d_edge.runtime.runtime import DEFAULT_BUNDLE
from i3d_edge.tokens import TokenTable


def embedded(root, **changes) -> Manifest:
    """The embedded bundle's manifest, moved to ``root`` (its files need not be there to write it)."""
    return dataclasses.replace(load_manifest(DEFAULT_BUNDLE), root=root, **changes)


def test_the_typed_manifest_round_trips():
    """parse -> to_dict -> parse gives an equal Manifest; to_dict writes every section the embedded
    manifest has, its configs with the fields added since it was written (at their defaults)."""
    manifest = load_manifest(DEFAULT_BUNDLE)
    raw = json.loads((DEFAULT_BUNDLE / MANIFEST_NAME).read_text(encoding="utf-8"))
    data = manifest.to_dict()
    assert parse_manifest(json.loads(json.dumps(data)), manifest.root) == manifest
    configs = ("model_config", "feature_config", TOKENS_HASH_FIELD)  # the embedded bundle predates the token hash
    assert {k: v for k, v in data.items() if k not in configs} == {k: v for k, v in raw.items() if k not in configs}
    assert data[TOKENS_HASH_FIELD] == tokens_sha256(manifest.tokens) != tokens_sha256(TokenTable(("<blank>", "a")))
    assert data["model_config"] == {**raw["model_config"], "frontend": "logmel", "waveform": None,
                                    "layout": "pre_ln", "activation": "relu", "layer_norm_eps": 1e-5}
    assert data["feature_config"] == {**raw["feature_config"], "kind": "log_mel", "do_normalize": False,
                                      "edge_silence": 0.0}


def test_write_manifest_refuses_what_readers_would_refuse(tmp_path):
    bad = embedded(tmp_path, modules=("layer00.mha",))
    with pytest.raises(BundleError) as info:
        write_manifest(bad)
    assert str(info.value) == f"{tmp_path / MANIFEST_NAME}: gate layout does not match the model config"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_write_manifest_bytes_mode_and_no_leftovers(tmp_path, umask, mode):
    manifest = embedded(tmp_path, provenance={"name": "caf\u00e9", "nested": {"values": [1.5, math.nan, math.inf]}})
    old = os.umask(umask)
    try:
        path = write_manifest(manifest)
    finally:
        os.umask(old)
    assert path == tmp_path / MANIFEST_NAME and sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]
    expected = {**manifest.to_dict(), "provenance": {"name": "caf\u00e9", "nested": {"values": [1.5, None, None]}}}
    assert path.read_text(encoding="utf-8") == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert path.stat().st_mode & 0o777 == mode


def test_write_manifest_onto_its_own_filesystem(tmp_path):
    """A bundle on another filesystem than the temporary folder (an SD card, a tmpfs): the new
    manifest is staged beside the old one, so the final rename never crosses filesystems."""
    root = tmp_path / "mounted"
    root.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], capture_output=True).returncode:
        pytest.skip("needs permission to mount a tmpfs")
    try:
        write_manifest(embedded(root))
        assert json.loads((root / MANIFEST_NAME).read_text()) == embedded(root).to_dict()
        assert [p.name for p in root.iterdir()] == [MANIFEST_NAME]
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_the_manifest_is_utf8_whatever_the_locale(tmp_path):
    """Written as UTF-8 also where the locale's encoding is ASCII (C locale, UTF-8 mode off)."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = ("import dataclasses, pathlib, sys; from i3d_edge.manifest import load_manifest, write_manifest; "
            "from i3d_edge.runtime.runtime import DEFAULT_BUNDLE; "
            "write_manifest(dataclasses.replace(load_manifest(DEFAULT_BUNDLE), root=pathlib.Path(sys.argv[1]), "
            "provenance={'name': 'caf\\u00e9'}))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    raw = (tmp_path / MANIFEST_NAME).read_bytes()
    assert b'"provenance": {\n    "name": "caf\xc3\xa9"\n  }' in raw
    assert json.loads(raw.decode("utf-8"))["provenance"] == {"name": "caf\u00e9"}


def test_a_failed_write_keeps_the_old_manifest_and_leaves_nothing(tmp_path):
    write_manifest(embedded(tmp_path))
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    with pytest.raises(TypeError):
        write_manifest(embedded(tmp_path, provenance={"bad": object()}))  # not JSON: fails while writing
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]


@pytest.mark.timeout(30)
def test_a_fifo_manifest_is_refused_without_blocking(make_bundle, tmp_path):
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "bundle")
    (bundle / MANIFEST_NAME).unlink()
    os.mkfifo(bundle / MANIFEST_NAME)
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    assert str(info.value) == f"{bundle.resolve() / MANIFEST_NAME}: not a regular file"


def test_the_manifest_size_limit_is_exact(make_bundle, tmp_path):
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "bundle")
    path = bundle / MANIFEST_NAME
    text = path.read_text(encoding="utf-8").rstrip()
    path.write_text(text + " " * (LIMITS.manifest_bytes - len(text.encode())), encoding="utf-8")  # exactly the limit
    assert path.stat().st_size == LIMITS.manifest_bytes
    load_manifest(bundle)  # JSON may end with whitespace
    with path.open("a", encoding="utf-8") as fh:
        fh.write(" ")  # one byte more
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    assert str(info.value) == f"{bundle.resolve() / MANIFEST_NAME}: larger than the 16 MiB a bundle manifest may have"
    path.unlink()
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    assert str(info.value) == f"{bundle.resolve() / MANIFEST_NAME}: missing (not an i3d-edge bundle)"


def test_decoder_section_defaults_and_round_trip():
    spec = DecoderSpec.from_dict({"kind": "lexicon-kenlm", "lm": "lm/words.arpa"})
    assert spec == DecoderSpec("lm/words.arpa", 1.0, 0.0, 32, DEFAULT_BEAM_THRESHOLD)
    assert spec.to_dict() == {"kind": "lexicon-kenlm", "lm": "lm/words.arpa", "lm_weight": 1.0, "word_score": 0.0,
                              "beam_size": 32, "beam_threshold": 8.0}
    full = {"kind": "lexicon-kenlm", "lm": "a.arpa", "lm_weight": 1.3, "word_score": -2, "beam_size": 256,
            "beam_threshold": 12}
    again = DecoderSpec.from_dict(full)
    assert again.to_dict() == {**full, "word_score": -2.0, "beam_threshold": 12.0}
    assert isinstance(again.word_score, float) and isinstance(again.beam_threshold, float)
    ints = DecoderSpec.from_dict({**full, "lm_weight": 2, "word_score": 3})  # JSON integers become floats
    assert type(ints.lm_weight) is float and type(ints.word_score) is float and ints.lm_weight == 2.0


@pytest.mark.parametrize(("section", "message"), [
    ({"kind": "ctc", "lm": "a.arpa"}, "unknown decoder kind 'ctc' (this build reads 'lexicon-kenlm')"),
    ({"lm": "a.arpa"}, "unknown decoder kind None (this build reads 'lexicon-kenlm')"),
    ({"kind": "lexicon-kenlm"}, "decoder has no 'lm' path"),
    ({"kind": "lexicon-kenlm", "lm": 3}, "decoder has no 'lm' path"),
    ({"kind": "lexicon-kenlm", "lm": "a", "lm_weight": -0.5}, "decoder lm_weight must be in [0, 1000], got -0.5"),
    ({"kind": "lexicon-kenlm", "lm": "a", "lm_weight": 1000.5}, "decoder lm_weight must be in [0, 1000], got 1000.5"),
    ({"kind": "lexicon-kenlm", "lm": "a", "word_score": -1001},
     "decoder word_score must be in [-1000, 1000], got -1001"),
    ({"kind": "lexicon-kenlm", "lm": "a", "word_score": True}, "decoder word_score must be in [-1000, 1000], got True"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_size": 0}, "decoder beam_size must be an integer in [1, 4096], got 0"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_size": 4097},
     "decoder beam_size must be an integer in [1, 4096], got 4097"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_size": 2.0},
     "decoder beam_size must be an integer in [1, 4096], got 2.0"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_threshold": 0},
     "decoder beam_threshold must be a number in (0, 1000], got 0"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_threshold": 1000.5},
     "decoder beam_threshold must be a number in (0, 1000], got 1000.5"),
    ({"kind": "lexicon-kenlm", "lm": "a", "beam_threshold": "8"},
     "decoder beam_threshold must be a number in (0, 1000], got '8'"),
])
def test_decoder_section_errors(section, message):
    with pytest.raises(ConfigError) as info:
        DecoderSpec.from_dict(section)
    assert str(info.value) == message


def test_decoder_section_edges_are_accepted():
    edges = {"kind": "lexicon-kenlm", "lm": "a", "lm_weight": 0, "word_score": 1000, "beam_size": 4096,
             "beam_threshold": 1000}
    assert DecoderSpec.from_dict(edges).to_dict() == {**edges, "lm_weight": 0.0, "word_score": 1000.0,
                                                      "beam_threshold": 1000.0}
    assert DecoderSpec.from_dict({**edges, "beam_size": 1, "word_score": -1000}).beam_size == 1
    assert DecoderSpec.from_dict({**edges, "beam_threshold": 0.5}).beam_threshold == 0.5  # (0, 1000]: not from 1


def test_variant_and_verify_messages(make_bundle, tmp_path):
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "b")
    manifest = load_manifest(bundle)
    root = bundle.resolve()
    with pytest.raises(BundleError) as info:
        manifest.variant("bf16")
    assert str(info.value) == f"{root}: no 'bf16' graphs in this bundle (has: {', '.join(sorted(manifest.variants))})"
    with pytest.raises(BundleError) as info:
        load_manifest(DEFAULT_BUNDLE).variant("bf16")
    assert str(info.value) == f"{DEFAULT_BUNDLE.resolve()}: no 'bf16' graphs in this bundle (has: fp32, int8)"
    assert manifest.variant().name == manifest.default_variant and manifest.variant(None) == manifest.variant()
    with pytest.raises(BundleError) as info:
        manifest.verify("fp32/extra.onnx")
    assert str(info.value) == f"{root}: fp32/extra.onnx is not listed in {MANIFEST_NAME}"
    head = manifest.variant().graphs["head"]
    assert manifest.verify(head) == root / head
    (root / head).write_bytes((root / head).read_bytes() + b"\0")
    with pytest.raises(BundleError) as info:
        manifest.verify(head)
    assert str(info.value) == f"{root / head}: SHA-256 mismatch (file modified or corrupt)"



def test_bundle_directory_messages(make_bundle, tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    for path, message in [
        (file, f"{file}: not a directory (expected an i3d-edge bundle)"),
        (tmp_path / "absent", f"{tmp_path / 'absent'}: no such bundle directory"),
        (tmp_path / ("d" * 300), f"{tmp_path / ('d' * 300)}: cannot access the bundle directory (File name too long)"),
    ]:
        with pytest.raises(BundleError) as info:
            load_manifest(path)
        assert str(info.value) == message
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "b")
    (bundle / MANIFEST_NAME).rename(tmp_path / "elsewhere.json")
    (bundle / MANIFEST_NAME).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    assert str(info.value) == f"{bundle.resolve() / MANIFEST_NAME}: symlinks are not allowed in a bundle"


DELETE = object()


def _set(path: str, value):
    """An edit setting data[a][b]... (path "a.b") to value, or deleting it when value is DELETE."""
    def edit(data: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        if value is DELETE:
            del data[last]
        else:
            data[last] = value

    return edit


def _with_file(rel: str):
    def edit(data: dict) -> None:
        data["files"][rel] = {"sha256": "0" * 64, "bytes": 1}

    return edit


LONG = "a" * 250 + "/" + "b" * 250 + "/"  # 502 characters in components the filesystem accepts
# case -> (edit of the raw manifest, the whole message; {root} = the bundle, {manifest} = its manifest.json)
DAMAGED = {
    "path_of_512_characters": (_with_file(LONG + "c" * 10), None),  # at the limit: accepted
    "path_of_513_characters": (_with_file(LONG + "c" * 11), "{root}: manifest path '" + "a" * 80 + "'... is longer "
                               "than 512 characters or 8 components"),
    "path_of_8_components": (_with_file("/".join("p" * 8)), None),
    "path_of_9_components": (_with_file("/".join("p" * 9)), "{root}: manifest path 'p/p/p/p/p/p/p/p/p'... is longer "
                             "than 512 characters or 8 components"),
    "component_too_long": (_with_file("fp32/" + "h" * 300), "{root}: manifest path 'fp32/" + "h" * 75 + "' is not "
                           "usable (File name too long)"),
    "escape": (_with_file("../outside.onnx"), "{root}: manifest path '../outside.onnx' escapes the bundle"),
    "no_tokens": (_set("tokens", DELETE), "{manifest}: manifest has no 'tokens'"),
    "tokens_not_a_list": (lambda d: d.__setitem__("tokens", "abc"), "{manifest}: manifest field 'tokens' has the "
                          "wrong type"),
    "other_format": (lambda d: d.__setitem__("format", "onnx-asr"), "{manifest}: not an i3d-edge bundle manifest"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_manifests_by_their_whole_message(make_bundle, tmp_path, case):
    edit, message = DAMAGED[case]
    bundle = shutil.copytree(make_bundle("global"), tmp_path / "b")
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    edit(data)
    (bundle / MANIFEST_NAME).write_text(json.dumps(data))
    if message is None:
        assert load_manifest(bundle).root == bundle.resolve()
        return
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    root = bundle.resolve()
    assert str(info.value) == message.format(root=root, manifest=root / MANIFEST_NAME)


@pytest.mark.parametrize(("raw", "cause"), [
    (b"[]", "not an i3d-edge bundle manifest"),
    (b"{", "unreadable manifest (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (b"\xff{}", "unreadable manifest ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),
])
def test_unparsable_manifests_by_their_whole_message(tmp_path, raw, cause):
    (tmp_path / MANIFEST_NAME).write_bytes(raw)
    with pytest.raises(BundleError) as info:
        load_manifest(tmp_path)
    assert str(info.value) == f"{tmp_path.resolve() / MANIFEST_NAME}: {cause}"


# case -> (edit of the embedded default model's manifest, the message after "<manifest.json>: ")
PARSE = {
    **{f"no_{key}": (_set(key, DELETE), f"manifest has no {key!r}")
       for key in ("model_config", "feature_config", "tokens", "gates", "files", "variants")},
    **{f"{key}_wrong_type": (_set(key, 7), f"manifest field {key!r} has the wrong type")
       for key in ("model_config", "feature_config", "tokens", "gates", "files", "variants", "decoder")},
    **{f"no_gates_{key}": (_set(f"gates.{key}", DELETE), f"manifest has no {key!r}")
       for key in ("predictor", "threshold", "modules")},
    **{f"gates_{key}_wrong_type": (_set(f"gates.{key}", None), f"manifest field {key!r} has the wrong type")
       for key in ("predictor", "threshold", "modules")},
    "version_2": (_set("version", 2),
                  "unsupported bundle version 2 (this build reads 1); re-export or upgrade i3d-edge"),
    "bad_model_config": (_set("model_config.n_layers", 0), "model config: n_layers must be a positive integer, got 0"),
    "bad_feature_value": (_set("feature_config.mean", ["x"] * 80),
                          "invalid model or feature config (could not convert string to float: 'x')"),
    "vocab_mismatch": (_set("tokens", ["<blank>", " "]), "2 tokens but vocab_size 29"),
    "n_mels_mismatch": (_set("model_config.n_mels", 40), "feature n_mels 80 does not match the model's 40"),
    "gate_layout": (_set("gates.predictor", "local"), "gate layout does not match the model config"),
    "threshold_range": (_set("gates.threshold", 1.5), "gates threshold must be in [0, 1), got 1.5"),
    "provenance_type": (_set("provenance", []), "manifest field 'provenance' has the wrong type"),
    "bad_sha256": (lambda d: d["files"][d["decoder"]["lm"]].__setitem__("sha256", "00"),
                   "file entry 'lm/words-399a48f88dd88a28.arpa' has no valid sha256"),
    "too_many_variants": (_set("variants", {f"v{i}": {} for i in range(9)}), "9 graph variants, more than 8"),
    "variant_without_graphs": (_set("variants.int8", {"quantization": None}), "variant 'int8' has no graphs"),
    "no_variants": (_set("variants", {}), "no graph variants"),
    "default_missing": (_set("default_variant", "bf16"), "default variant 'bf16' is missing"),
    "bad_decoder": (_set("decoder.beam_size", 0), "decoder beam_size must be an integer in [1, 4096], got 0"),
    "decoder_lm_unlisted": (_set("decoder.lm", "lm/other.arpa"),
                            "decoder lm points to an unlisted file 'lm/other.arpa'"),
}


@pytest.mark.parametrize("case", list(PARSE))
def test_parse_manifest_messages(case):
    """Every refusal of ``parse_manifest``, each whole message, on edits of a real manifest."""
    root = DEFAULT_BUNDLE.resolve()
    data = json.loads((root / MANIFEST_NAME).read_text())
    assert parse_manifest(json.loads(json.dumps(data)), root).modules == tuple(data["gates"]["modules"])
    edit, message = PARSE[case]
    edit(data)
    with pytest.raises(BundleError) as info:
        parse_manifest(data, root)
    assert str(info.value) == f"{root / MANIFEST_NAME}: {message}"


def test_parse_manifest_graph_sets_and_inclusive_limits(make_bundle):
    """The graphs a variant must have (local gate predictors per layer for a local bundle, the
    global one otherwise), the first four missing or unknown ones named, and the file and variant
    limits inclusive (8192 files and 8 variants are accepted)."""
    local = make_bundle("local").resolve()
    data = json.loads((local / MANIFEST_NAME).read_text())
    graphs = data["variants"]["fp32"]["graphs"]
    assert {"layer00.gate", "layer01.gate"} <= set(graphs) and "gate" not in graphs
    assert parse_manifest(json.loads(json.dumps(data)), local).predictor == "local"
    del graphs["layer01.gate"]
    with pytest.raises(BundleError) as info:
        parse_manifest(data, local)
    assert str(info.value) == f"{local / MANIFEST_NAME}: variant 'fp32' lacks graph(s) layer01.gate"

    root = DEFAULT_BUNDLE.resolve()
    where = root / MANIFEST_NAME

    def refused(edit) -> str:
        data = json.loads(where.read_text())
        edit(data)
        with pytest.raises(BundleError) as info:
            parse_manifest(data, root)
        return str(info.value).removeprefix(f"{where}: ")

    def drop(data: dict) -> None:
        for key in ("frontend", "gate", "layer00.mha", "layer00.ffn", "layer01.mha", "head"):
            del data["variants"]["int8"]["graphs"][key]

    assert refused(drop) == "variant 'int8' lacks graph(s) frontend, head, layer00.mha, layer00.ffn"

    def extra(data: dict) -> None:
        graphs = data["variants"]["fp32"]["graphs"]
        for key in ("layer00.gate", "layer01.gate", "layer99.mha", "decoder", "lm"):
            graphs[key] = graphs["head"]

    assert refused(extra) == "variant 'fp32' has unknown graph(s) layer00.gate, layer01.gate, layer99.mha, decoder"

    data = json.loads(where.read_text())
    data["files"].update({f"x/{i}.bin": {"sha256": "0" * 64, "bytes": 1} for i in range(8192 - len(data["files"]))})
    data["variants"].update({f"v{i}": data["variants"]["fp32"] for i in range(6)})
    parsed = parse_manifest(data, root)  # 8192 files, 8 variants: at the limits
    assert len(parsed.files) == 8192 and len(parsed.variants) == 8
    data["files"]["x/one-more.bin"] = {"sha256": "0" * 64, "bytes": 1}
    with pytest.raises(BundleError) as info:
        parse_manifest(data, root)
    assert str(info.value) == f"{where}: lists 8193 files, more than the 8192 a bundle may have"


def test_parse_manifest_carries_every_field():
    """The parsed manifest of the embedded model holds each section of its JSON, and the default
    variant is fp32 when the manifest names none."""
    root = DEFAULT_BUNDLE.resolve()
    data = json.loads((root / MANIFEST_NAME).read_text())
    parsed = parse_manifest(json.loads(json.dumps(data)), root)
    assert (parsed.root, parsed.predictor, parsed.threshold) == (root, "global", 0.5)
    assert parsed.modules == tuple(data["gates"]["modules"]) and parsed.files == data["files"]
    assert {n: (v.quantization, v.graphs) for n, v in parsed.variants.items()} == {
        n: (v.get("quantization"), v["graphs"]) for n, v in data["variants"].items()}
    assert parsed.variants["fp32"].quantization is None and parsed.variants["int8"].quantization["weight_type"]
    assert parsed.provenance == data["provenance"] and parsed.provenance["source_checkpoint"]["sha256"]
    assert parsed.verification == data["verification"] and parsed.verification["status"] == "passed"
    assert parsed.lm_ngram == {"source": "words-v05.arpa"} and parsed.default_variant == data["default_variant"]
    del data["default_variant"]
    data["variants"]["fp32"]["graphs"]["head"] = "fp32/elsewhere.onnx"
    with pytest.raises(BundleError) as info:
        parse_manifest(data, root)
    assert str(info.value) == (f"{root / MANIFEST_NAME}: graph fp32/head points to an unlisted file "
                               "'fp32/elsewhere.onnx'")
    data["variants"]["fp32"]["graphs"]["head"] = data["variants"]["int8"]["graphs"]["head"]
    assert parse_manifest(data, root).default_variant == "fp32"
