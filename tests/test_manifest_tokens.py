"""Manifest tokens are printable and hashed: a token that would drive the terminal (``ESC]0;...BEL``) or
split a result line is refused by ``transcribe`` and ``inspect`` in one line, and tokens edited
after export no longer match ``tokens_sha256``."""

from __future__ import annotations

import hashlib
import json

import pytest

from i3d_edge.errors import BundleError, ConfigError
from i3d_edge.manifest import MANIFEST_NAME, check_token_text, load_manifest, tokens_sha256
from i3d_edge.tokens import TokenTable
from tests.conftest import manifest_json, one_line_error, run_cli, save_manifest_json

HOSTILE = {
    "terminal_escape": ("\x1b]0;owned\x07\x1b[2J", "token 3 ('\\x1b]0;owned\\x07\\x1b[2J') is not printable"),
    "newline": ("\n", "token 3 ('\\n') is not printable"),
    "bidi_override": ("\u202e", "token 3 ('\\u202e') is not printable"),
    "65_characters": ("x" * 65, "is not printable text of at most 64 characters"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_token_that_is_not_printable_text_is_refused_in_one_line(bundle, wav, case):
    token, fragment = HOSTILE[case]
    data = manifest_json(bundle)
    data["tokens"][3] = token
    data.pop("tokens_sha256")  # as an editor who knows the hash would leave it: absent
    save_manifest_json(bundle, data)
    for command in (["transcribe", str(wav), "--model", str(bundle)], ["inspect", str(bundle)]):
        proc = run_cli(*command)
        one_line_error(proc, str(bundle.resolve() / MANIFEST_NAME), fragment)
        assert "\x1b" not in proc.stderr and "\u202e" not in proc.stderr


def test_the_exported_manifest_hashes_its_tokens(bundle):
    data = manifest_json(bundle)
    compact = json.dumps(data["tokens"], ensure_ascii=True, separators=(",", ":")).encode()
    assert data["tokens_sha256"] == hashlib.sha256(compact).hexdigest()
    assert tokens_sha256(load_manifest(bundle).tokens) == data["tokens_sha256"]


def test_tokens_edited_after_export_are_refused(bundle, wav):
    data = manifest_json(bundle)
    data["tokens"][3], data["tokens"][4] = data["tokens"][4], data["tokens"][3]  # printable, but not these
    save_manifest_json(bundle, data)
    with pytest.raises(BundleError) as info:
        load_manifest(bundle)
    assert str(info.value) == (f"{bundle.resolve() / MANIFEST_NAME}: tokens_sha256 does not match the tokens "
                               "(manifest modified or corrupt)")
    one_line_error(run_cli("inspect", str(bundle)), "tokens_sha256 does not match the tokens")


def test_a_manifest_without_the_token_hash_still_opens(bundle):
    """Bundles exported before the hash existed have printable tokens and no hash: they open."""
    data = manifest_json(bundle)
    del data["tokens_sha256"]
    save_manifest_json(bundle, data)
    assert load_manifest(bundle).tokens.tokens == tuple(data["tokens"])


def test_check_token_text_accepts_the_default_vocabulary_and_word_pieces():
    check_token_text(TokenTable())
    check_token_text(TokenTable(("<blank>", " ", "|", "<unk>", "'", "\u00e9", "\u4e2d", "x" * 64)))
    with pytest.raises(ConfigError):
        check_token_text(TokenTable(("<blank>", "\t")))
