"""The bundle manifest contract (``manifest.py``) through its public API: the one writer, the
reader's file checks and the decoder section, each value and message compared exactly."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from i3d_edge.errors import BundleError, ConfigError
from i3d_edge.limits import LIMITS
from i3d_edge.manifest import DEFAULT_BEAM_THRESHOLD, MANIFEST_NAME, DecoderSpec, load_manifest, write_manifest


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_write_manifest_bytes_mode_and_no_leftovers(tmp_path, umask, mode):
    data = {"format": "x", "name": "caf\u00e9", "nested": {"values": [1.5, math.nan, math.inf]}}
    old = os.umask(umask)
    try:
        path = write_manifest(tmp_path, data)
    finally:
        os.umask(old)
    assert path == tmp_path / MANIFEST_NAME and sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]
    expected = {"format": "x", "name": "caf\u00e9", "nested": {"values": [1.5, None, None]}}  # no NaN / Infinity
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
        write_manifest(root, {"version": 1})
        assert json.loads((root / MANIFEST_NAME).read_text()) == {"version": 1}
        assert [p.name for p in root.iterdir()] == [MANIFEST_NAME]
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_the_manifest_is_utf8_whatever_the_locale(tmp_path):
    """Written as UTF-8 also where the locale's encoding is ASCII (C locale, UTF-8 mode off)."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = ("import sys; from i3d_edge.manifest import write_manifest; "
            "write_manifest(sys.argv[1], {'name': 'caf\\u00e9'})")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / MANIFEST_NAME).read_bytes() == b'{\n  "name": "caf\xc3\xa9"\n}\n'


def test_a_failed_write_keeps_the_old_manifest_and_leaves_nothing(tmp_path):
    write_manifest(tmp_path, {"version": 1})
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    with pytest.raises(TypeError):
        write_manifest(tmp_path, {"version": 2, "bad": object()})  # not JSON: fails while writing
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
