"""Names chosen by whoever made a file reach the terminal escaped: an input named
``x\\nerror: injected.wav`` gives one ``error:`` line, not two, and an escape sequence in a name is
printed as text. Imported vocabularies with control characters are refused at import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from i3d_edge.cli.terminal import escape_controls
from i3d_edge.runtime import Runtime
from tests.conftest import one_line_error, run_cli, speechlike


@pytest.mark.parametrize(("text", "shown"), [
    ("plain name.wav", "plain name.wav"),
    ("x\nerror: injected.wav", "x\\nerror: injected.wav"),
    ("a\rb\tc", "a\\rb\\tc"),
    ("\x1b]0;owned\x07\x1b[2J", "\\x1b]0;owned\\x07\\x1b[2J"),
    ("\x9b31m", "\\x9b31m"),
    ("line\u2028sep\u202eevil", "line\\u2028sep\\u202eevil"),
    ("caf\u00e9 \u4e2d.wav", "caf\u00e9 \u4e2d.wav"),
])
def test_escape_controls(text, shown):
    assert escape_controls(text) == shown


def test_an_input_name_cannot_forge_an_error_line(bundle, tmp_path):
    bad = tmp_path / "x\nerror: injected.wav"
    bad.write_bytes(b"not audio" * 50)
    proc = run_cli("transcribe", str(bad), "--model", str(bundle))
    line = one_line_error(proc, f"{tmp_path}/x\\nerror: injected.wav: not a readable audio file")
    assert line.startswith(f"error: {tmp_path}/x\\nerror: injected.wav: ")  # one line; the name kept, escaped


def test_a_missing_input_with_an_escape_sequence_is_printed_as_text(bundle, tmp_path):
    proc = run_cli("transcribe", str(tmp_path / "\x1b]0;owned\x07.wav"), "--model", str(bundle))
    one_line_error(proc, "\\x1b]0;owned\\x07.wav: no such file")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_the_path_prefix_of_text_results_is_escaped(bundle, wav, tmp_path):
    odd = tmp_path / "two\nlines.wav"
    shutil.copyfile(wav, odd)
    proc = run_cli("transcribe", str(wav), str(odd), "--model", str(bundle))
    assert proc.returncode == 0, proc.stderr
    text = Runtime(bundle).transcribe(wav).text
    assert proc.stdout.splitlines() == [f"{wav}: {text}", f"{tmp_path}/two\\nlines.wav: {text}"]


def test_an_imported_vocabulary_token_with_a_newline_is_refused(tmp_path):
    pytest.importorskip("transformers")
    from tests.hf_models import build_hf_model

    source = tmp_path / "hf"
    build_hf_model("Wav2Vec2ForCTC", False, source)
    vocab = json.loads((source / "vocab.json").read_text())
    token = next(t for t in vocab if len(t) == 1 and t.isalpha())
    vocab["\n"] = vocab.pop(token)
    (source / "vocab.json").write_text(json.dumps(vocab))
    proc = run_cli("import", str(source), "-o", str(tmp_path / "out.pt"))
    one_line_error(proc, str(source / "vocab.json"), "('\\n') is not printable text")
    assert not (tmp_path / "out.pt").exists()


def test_a_file_named_with_a_terminal_escape_is_transcribed_and_named_escaped(bundle, tmp_path):
    path = tmp_path / "\x1b[31mred.wav"
    sf.write(path, speechlike(1.0, seed=2), 16000)
    proc = run_cli("transcribe", str(path), "--model", str(bundle), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["audio"] == str(path) and "\x1b" not in proc.stdout  # JSON escapes it as \u001b
    assert Path(document["audio"]).name == "\x1b[31mred.wav"
