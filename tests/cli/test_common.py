"""What every command shares (cli/_common.py): the one table of contradicting options, usage
errors as one ``error:`` line with exit 1, ``default`` and checkpoint hints wherever a bundle is
read, readable help labels."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.cli import app
from i3d_edge.cli._common import CONFLICTS
from i3d_edge.runtime import DEFAULT_BUNDLE, Runtime
from i3d_edge.runtime.subtitles import to_srt, to_vtt
from tests.conftest import ROOT, speechlike

HAS_DEFAULT = (DEFAULT_BUNDLE / "manifest.json").is_file()


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("common") / "a.wav"
    sf.write(path, speechlike(1.0, seed=3), 16000)
    return path


def run(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def one_error_line(result) -> str:
    assert result.exit_code == 1 and result.stdout == "", result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# (first, second) row of CONFLICTS -> transcribe arguments that give both, and the whole error line
CONFLICT_CASES = {
    ("full_depth", "max_modules"): (("--full-depth", "--max-modules", "4"),
                                    "--full-depth runs every module and --max-modules K caps them: give one"),
    ("full_depth", "threshold"): (("--full-depth", "--threshold", "0.3"),
                                  "--full-depth ignores the gates, so --threshold would change nothing: give one"),
    ("decoder", "lm_weight"): (("--decoder", "greedy", "--lm-weight", "2"),
                               "--lm-weight weighs the language model, which --decoder greedy does not use"),
    ("decoder", "word_score"): (("--decoder", "greedy", "--word-score", "1"),
                                "--word-score is a language-model setting, which --decoder greedy does not use"),
    ("decoder", "beam_size"): (("--decoder", "greedy", "--beam-size", "8"),
                               "--beam-size sizes the language-model beam search, which --decoder greedy does not run"),
    ("output_dir", "output"): (("-o", "{tmp}/x.txt", "-d", "{tmp}/out"), "give --output-dir DIR or -o FILE, not both"),
    ("force", "skip_existing"): (("-d", "{tmp}/out", "--force", "--skip-existing"),
                                 "give --force or --skip-existing, not both"),
    ("output", "formats"): (("-o", "{tmp}/w.vtt", "-f", "srt"),
                            "-o {tmp}/w.vtt is named as a vtt file but --format is srt: drop --format (the suffix "
                            "picks the format) or name the file to match"),
    ("max_line_chars", "formats"): (("--max-line-chars", "20", "-f", "json"),
                                    "--max-line-chars shapes subtitle lines: give it with --format srt, vtt or tsv"),
    ("ray_address", "output"): (("--ray", "auto", "-o", "{tmp}/x.txt"),
                                "--ray writes one file per input into --output-dir DIR, not -o FILE: give "
                                "--output-dir"),
}


def test_every_row_of_the_table_is_tested():
    assert set(CONFLICT_CASES) == {(row.first, row.second) for row in CONFLICTS}


@pytest.mark.parametrize("row", list(CONFLICT_CASES), ids="+".join)
def test_each_conflicting_pair_is_an_error(bundle, clip, tmp_path, row):
    args, message = CONFLICT_CASES[row]
    result = run("transcribe", clip, "-m", bundle, *(a.format(tmp=tmp_path) for a in args))
    assert one_error_line(result) == f"error: {message.format(tmp=tmp_path)}"
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_each_option_of_a_pair_alone_is_accepted(bundle, clip, tmp_path):
    for args in (("--full-depth",), ("--max-modules", "4", "--threshold", "0.3"), ("--decoder", "greedy"),
                 ("-o", tmp_path / "w.vtt"), ("-o", tmp_path / "w.out", "-f", "srt"),
                 ("--max-line-chars", "20", "-f", "srt"), ("-o", tmp_path / "x.vtt", "-f", "vtt")):
        result = run("transcribe", clip, "-m", bundle, *args)
        assert result.exit_code == 0, (args, result.output)
    want = Runtime(bundle).transcribe(clip)
    assert (tmp_path / "w.vtt").read_text() == to_vtt(want)  # the suffix picks the format
    assert (tmp_path / "x.vtt").read_text() == to_vtt(want)  # and may agree with --format
    assert (tmp_path / "w.out").read_text() == to_srt(want)  # another suffix takes any format


def test_the_table_holds_for_every_command_with_both_options(bundle, clip):
    line = CONFLICT_CASES[("full_depth", "max_modules")][1]
    assert one_error_line(run("eval", clip.parent, "-m", bundle, "--full-depth", "--max-modules", "4")) == \
        f"error: {line}"


@pytest.mark.parametrize(("args", "line"), [
    (("transcribe", "--bogus"), "error: no such option: --bogus (see 'i3d-edge transcribe --help')"),
    (("transcribe", "a.wav", "--threshold", "x"), "error: invalid value for '--threshold': "),
    (("transcribe",), "error: missing argument 'AUDIO' (see 'i3d-edge transcribe --help')"),
    (("nosuch",), "error: no such command 'nosuch' (see 'i3d-edge --help')"),
    (("--bogus",), "error: no such option: --bogus (see 'i3d-edge --help')"),
    (("inspect", "a", "b"), "error: got unexpected extra argument(s) (b) (see 'i3d-edge inspect --help')"),
    (("bench", "--threads", "0"), "error: invalid value for '--threads': "),
])
def test_usage_errors_are_one_line_with_exit_1(args, line):
    got = one_error_line(run(*args))
    assert got == line if line.endswith(")") else got.startswith(line) and got.endswith("--help')")


def test_usage_errors_name_the_command_users_type():
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", "--formt", "json"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("error: no such option: --formt (Possible options: --force, --format) "
                           "(see 'i3d-edge transcribe --help')\n")
    bare = subprocess.run([sys.executable, "-m", "i3d_edge"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bare.returncode == 0 and "Usage: i3d-edge [OPTIONS] COMMAND" in bare.stdout and bare.stderr == ""


@pytest.mark.skipif(not HAS_DEFAULT, reason="no embedded default model")
def test_default_is_the_embedded_model_wherever_a_bundle_is_read(clip, tmp_path):
    via_default = run("transcribe", clip, "-m", "default", "-f", "json")
    plain = run("transcribe", clip, "-f", "json")
    assert via_default.exit_code == 0 and json.loads(via_default.stdout)["text"] == json.loads(plain.stdout)["text"]
    analyzed = run("analyze", "default", clip, "-o", tmp_path / "an", "--no-plots")
    assert analyzed.exit_code == 0, analyzed.output
    assert json.loads((tmp_path / "an" / "summary.json").read_text())["modules_total"] == 24
    refused = one_error_line(run("lm", "default", "--lm-weight", "1.5"))
    assert refused == ("error: the embedded default model is part of the installed package; copy it and change the "
                       f"copy: cp -r {DEFAULT_BUNDLE} my-bundle && i3d-edge lm my-bundle ...")
    manifest = (DEFAULT_BUNDLE / "manifest.json").read_text()
    shutil.copytree(DEFAULT_BUNDLE, tmp_path / "mine")
    assert run("lm", tmp_path / "mine", "--lm-weight", "1.5").exit_code == 0  # the copy is changed ...
    assert json.loads((tmp_path / "mine" / "manifest.json").read_text())["decoder"]["lm_weight"] == 1.5
    assert (DEFAULT_BUNDLE / "manifest.json").read_text() == manifest  # ... the installed model is not


def test_a_file_given_as_a_bundle_says_what_to_do(bundle, clip, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"PK\x03\x04" + bytes(100))
    hint = f"error: {ckpt}: a file, not a bundle directory; if it is a checkpoint, make a bundle of it first: " \
           f"i3d-edge export {ckpt} -o bundle/"
    assert one_error_line(run("transcribe", clip, "-m", ckpt)) == hint
    assert one_error_line(run("analyze", ckpt, clip, "-o", tmp_path / "an")) == hint
    manifest = bundle / "manifest.json"
    assert one_error_line(run("transcribe", clip, "-m", manifest)) == \
        f"error: {manifest}: give the bundle directory that holds the manifest ({bundle})"


COMMANDS = ("transcribe", "eval", "inspect", "export", "init", "lm", "train", "analyze", "bench", "import")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_labels_are_the_same_everywhere(command):
    text = run(command, "--help").stdout
    for raw in ("<bool>", "<int>", "<float>", "<text>", "<path>", "range", "[x>", "[x<"):
        assert raw not in text, (command, raw)
    assert not re.search(r"\(default \d|\[\d[\d.]*\]", text), command  # defaults read "[default: X]"
