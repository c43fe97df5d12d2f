"""The exception contract: every error is an I3dEdgeError and a built-in, and the one-line causes
built from other libraries' exceptions (``first_line``, ``native_reason``) by hand cases."""

from __future__ import annotations

import pytest

from i3d_edge import errors
from i3d_edge.errors import first_line, native_reason

KENLM = ("/tmp/flashlight/kenlm/lm/read_arpa.cc:65 in void lm::ReadNGramHeader(util::FilePiece&, "
         "std::vector<long unsigned int>&) threw FormatLoadException.\n"
         "  This ngram implementation assumes at least a bigram model.\nByte: 18\n")


@pytest.mark.parametrize(("name", "builtin"), [
    ("AudioError", ValueError), ("BundleError", ValueError), ("CheckpointError", ValueError),
    ("ConfigError", ValueError), ("CorpusError", ValueError), ("ExportError", RuntimeError)])
def test_every_error_is_also_a_builtin(name, builtin):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.I3dEdgeError) and issubclass(cls, builtin)


def test_first_line_by_hand():
    assert first_line(ValueError("  bad header\nat byte 3")) == "bad header"
    assert first_line(OSError("")) == "OSError"
    assert first_line(ValueError("x" * 300)) == "x" * 200
    assert first_line(ValueError("abcdef"), limit=3) == "abc"


@pytest.mark.parametrize(("message", "reason"), [
    (KENLM, "This ngram implementation assumes at least a bigram model."),  # skips the source location
    ("/src/a.cc:1 in f()\n/src/b.cc:2 in g()\nthe reason", "the reason"),  # a path line without "threw"
    ("flashlight threw it\n/src/b.cc:2\n  the reason  ", "the reason"),  # a "threw" line not starting with /
    ("/src/a.cc:1 threw X.\n/src/b.cc:2 threw Y.", "/src/a.cc:1 threw X."),  # nothing else: the first line
    ("\n\n  ", "RuntimeError"),  # nothing at all: the type
    ("r" * 300, "r" * 200),
])
def test_native_reason_by_hand(message, reason):
    assert native_reason(RuntimeError(message)) == reason


def test_native_reason_limit():
    assert native_reason(RuntimeError("/x threw\nabcdef"), limit=4) == "abcd"
