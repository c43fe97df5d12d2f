"""``i3d-edge`` as speech CLIs are used: directories, stdin, output files, missing extras, help,
damaged audio, a closed stdout. Everything goes through the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.cli import app
from i3d_edge.runtime import DEFAULT_BUNDLE, Runtime
from i3d_edge.runtime.subtitles import to_srt, to_tsv, to_vtt
from tests.conftest import ROOT, default_signals, speechlike


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2)


@pytest.fixture(scope="module")
def rt(bundle) -> Runtime:
    return Runtime(bundle, threshold=0.2)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """rec/ with audio at two depths, a hidden file, a hidden folder and a non-audio file."""
    root = tmp_path_factory.mktemp("tree") / "rec"
    (root / "day2" / "late").mkdir(parents=True)
    (root / ".cache").mkdir()
    sf.write(root / "b.wav", speechlike(1.0, seed=1), 16000)
    sf.write(root / "a.flac", speechlike(1.3, seed=2), 16000)
    sf.write(root / "day2" / "c.ogg", speechlike(1.1, seed=3), 16000)
    sf.write(root / "day2" / "late" / "d.wav", speechlike(0.9, seed=4), 8000)
    sf.write(root / ".hidden.wav", speechlike(1.0, seed=5), 16000)
    sf.write(root / ".cache" / "e.wav", speechlike(1.0, seed=6), 16000)
    (root / "notes.txt").write_text("not audio\n")
    return root


EXPECTED = ["a.flac", "b.wav", "day2/c.ogg", "day2/late/d.wav"]  # sorted by path, hidden and non-audio left out


def run(*args: object, input: bytes | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    assert "Traceback" not in result.output, result.output
    return result


def transcribe(*args: object, input: bytes | None = None):
    return run("transcribe", *args, input=input)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


# ---------------------------------------------------------------- inputs


def test_directory_is_searched_recursively_in_path_order(bundle, rt, tree):
    result = transcribe(tree, "-m", bundle, "--threshold", "0.2", "-f", "json")
    assert result.exit_code == 0, result.output
    objs = json_lines(result.stdout)
    assert [o["audio"] for o in objs] == [os.path.join(tree, *e.split("/")) for e in EXPECTED]
    for obj in objs:
        assert obj["text"] == rt.transcribe(obj["audio"]).text


def test_glob_filters_directory_files_and_explicit_files_always_count(bundle, tree):
    result = transcribe(tree, "--glob", "*.wav", "-m", bundle, "-f", "json")
    assert [o["audio"] for o in json_lines(result.stdout)] == [str(tree / "b.wav"), str(tree / "day2/late/d.wav")]
    by_path = transcribe(tree, "-g", "day2/*", "-g", "a.*", "-m", bundle, "-f", "json")
    assert [o["audio"] for o in json_lines(by_path.stdout)] == [
        str(tree / "a.flac"), str(tree / "day2/c.ogg"), str(tree / "day2/late/d.wav")]
    odd = tree.parent / "speech.data"
    sf.write(odd, speechlike(1.0), 16000, format="WAV")
    explicit = transcribe(odd, "-m", bundle, "-f", "json")
    assert explicit.exit_code == 0 and json_lines(explicit.stdout)[0]["audio"] == str(odd)


def test_directory_without_audio_fails_alone(bundle, tree, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    result = transcribe(tree / "b.wav", tmp_path / "empty", tree / "a.flac", "-m", bundle, "-f", "json")
    assert result.exit_code == 1
    assert [o["audio"] for o in json_lines(result.stdout)] == [str(tree / "b.wav"), str(tree / "a.flac")]
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {tmp_path / 'empty'}: no files with an audio extension (")
    assert "wav" in errors[0] and "mp3" in errors[0]
    nothing = transcribe(tree, "--glob", "*.xyz", "-m", bundle)
    assert nothing.exit_code == 1 and nothing.stderr == f"error: {tree}: no files matching *.xyz in this directory\n"


def test_stdin_is_read_like_a_file(bundle, rt, tree):
    data = (tree / "a.flac").read_bytes()
    result = transcribe("-", "-m", bundle, "--threshold", "0.2", input=data)
    assert result.exit_code == 0, result.output
    assert result.stdout == rt.transcribe(tree / "a.flac").text + "\n"
    mixed = transcribe(tree / "b.wav", "-", "-", "-m", bundle, "--threshold", "0.2", "-f", "json", input=data)
    assert mixed.exit_code == 1
    assert [(o["audio"], o["text"]) for o in json_lines(mixed.stdout)] == [
        (str(tree / "b.wav"), rt.transcribe(tree / "b.wav").text), ("-", rt.transcribe(tree / "a.flac").text)]
    assert mixed.stderr == "error: -: standard input can be read only once\n"


def test_bad_stdin_is_one_line_naming_dash(bundle):
    empty = transcribe("-", "-m", bundle, input=b"")
    assert empty.exit_code == 1 and empty.stderr == "error: -: empty file (0 bytes)\n"
    garbage = transcribe("-", "-m", bundle, input=b"not audio at all" * 100)
    assert garbage.exit_code == 1 and garbage.stderr.startswith("error: -: not a readable audio file")
    assert len(garbage.stderr.splitlines()) == 1 and "i3d-edge-stdin" not in garbage.stderr


# ---------------------------------------------------------------- outputs


def test_output_dir_writes_every_format_per_input(bundle, rt, tree, tmp_path):
    out = tmp_path / "out"
    result = transcribe(tree, "-d", out, "-f", "all", "-m", bundle, "--threshold", "0.2")
    assert result.exit_code == 0 and result.stdout == "", result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(f"{e.rsplit('.', 1)[0]}{s}" for e in EXPECTED
                             for s in (".txt", ".json", ".srt", ".vtt", ".tsv"))
    for entry in EXPECTED:
        want = rt.transcribe(tree / entry)
        stem = out / entry.rsplit(".", 1)[0]
        assert Path(f"{stem}.txt").read_text() == want.text + "\n"
        obj = json.loads(Path(f"{stem}.json").read_text())
        assert obj["audio"] == str(tree / entry) and obj["text"] == want.text
        assert Path(f"{stem}.srt").read_text() == to_srt(want)
        assert Path(f"{stem}.vtt").read_text() == to_vtt(want)
        assert Path(f"{stem}.vtt").read_text().count("WEBVTT") == 1
        assert Path(f"{stem}.tsv").read_text() == to_tsv(want)


def test_several_formats_by_comma_or_repeat_and_stdin_name(bundle, rt, tree, tmp_path):
    result = transcribe("-", tree / "b.wav", "-d", tmp_path, "-f", "srt,json", "-f", "vtt", "-m", bundle,
                        "--threshold", "0.2", input=(tree / "a.flac").read_bytes())
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.srt", "b.vtt", "stdin.json", "stdin.srt",
                                                          "stdin.vtt"]
    assert (tmp_path / "stdin.srt").read_text() == to_srt(rt.transcribe(tree / "a.flac"))


def test_existing_outputs_need_force_or_skip_existing(bundle, rt, tree, tmp_path):
    first = transcribe(tree / "a.flac", tree / "b.wav", "-d", tmp_path, "-m", bundle, "--threshold", "0.2")
    assert first.exit_code == 0
    (tmp_path / "a.txt").write_text("old a\n")
    refused = transcribe(tree / "a.flac", tree / "b.wav", "-d", tmp_path, "-m", bundle)
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        f"error: {tree / 'a.flac'}: {tmp_path / 'a.txt'} exists (--force overwrites, --skip-existing skips inputs "
        "already done)",
        f"error: {tree / 'b.wav'}: {tmp_path / 'b.txt'} exists (--force overwrites, --skip-existing skips inputs "
        "already done)"]
    assert (tmp_path / "a.txt").read_text() == "old a\n"
    # --skip-existing: inputs whose outputs all exist are not transcribed; a missing format is added
    (tmp_path / "b.txt").unlink()
    skipped = transcribe(tree / "a.flac", tree / "b.wav", "-d", tmp_path, "-m", bundle, "--threshold", "0.2",
                         "--skip-existing")
    assert skipped.exit_code == 0
    assert (tmp_path / "a.txt").read_text() == "old a\n"
    assert (tmp_path / "b.txt").read_text() == rt.transcribe(tree / "b.wav").text + "\n"
    assert "skipped 1 input" in skipped.stderr
    forced = transcribe(tree / "a.flac", "-d", tmp_path, "-m", bundle, "--threshold", "0.2", "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "a.txt").read_text() == rt.transcribe(tree / "a.flac").text + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temporary files left


def test_failed_input_or_write_leaves_no_partial_file(bundle, tree, tmp_path):
    bad = tmp_path / "in" / "a.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF" + bytes(300))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("previous\n")
    (out / "b.txt").mkdir()  # a directory where b's output should go: the write fails
    result = transcribe(bad, tree / "b.wav", tree / "day2" / "c.ogg", "-d", out, "--force", "-m", bundle)
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"error: {bad}: not a readable audio file")
    assert errors[1].startswith(f"error: {tree / 'b.wav'}: cannot write {out / 'b.txt'}")
    assert (out / "a.txt").read_text() == "previous\n"  # kept: a's transcription failed
    assert (out / "c.txt").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt", "c.txt"]


def test_interrupted_run_leaves_no_partial_file(bundle, rt, tree, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, speechlike(600.0, seed=9), 16000)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "i3d_edge", "transcribe", str(tree / "a.flac"), str(long), "-d",
                             str(out), "-f", "all", "-m", str(bundle), "--threshold", "0.2", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=default_signals)
    try:
        for _ in range(2400):  # wait (up to 2 min) until the first input is written: the long one is under way
            if (out / "a.tsv").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    names = sorted(p.name for p in out.iterdir())
    want = rt.transcribe(tree / "a.flac")
    assert (out / "a.txt").read_text() == want.text + "\n" and (out / "a.srt").read_text() == to_srt(want)
    if proc.returncode == 0:  # the long file was done before the signal: every file is whole
        assert names == ["a.json", "a.srt", "a.tsv", "a.txt", "a.vtt", "long.json", "long.srt", "long.tsv",
                         "long.txt", "long.vtt"]
    else:
        assert proc.returncode == 130 and err.decode() == "error: interrupted\n"
        assert names == ["a.json", "a.srt", "a.tsv", "a.txt", "a.vtt"]  # nothing of the long file, no temporary file


def test_output_file_for_one_input(bundle, rt, tree, tmp_path):
    want = rt.transcribe(tree / "a.flac")
    by_suffix = transcribe(tree / "a.flac", "-o", tmp_path / "sub" / "a.srt", "-m", bundle, "--threshold", "0.2")
    assert by_suffix.exit_code == 0 and by_suffix.stdout == ""
    assert (tmp_path / "sub" / "a.srt").read_text() == to_srt(want)
    as_json = transcribe(tree / "a.flac", "-o", tmp_path / "a.out", "-f", "json", "-m", bundle)
    assert as_json.exit_code == 0 and as_json.stdout == ""
    assert json.loads((tmp_path / "a.out").read_text())["audio"] == str(tree / "a.flac")
    again = transcribe(tree / "a.flac", "-o", tmp_path / "a.out", "-m", bundle)
    assert again.exit_code == 1 and "exists (--force overwrites" in again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("{a}", "{b}", "-o", "x.txt"), "-o FILE takes one input, got 2: give --output-dir DIR for several"),
    (("{a}", "{b}", "-f", "srt"), "srt subtitles of 2 inputs would run together on stdout: give --output-dir DIR"),
    (("{a}", "-f", "text,json"), "several formats (txt, json) are written as one file each: give --output-dir"),
    (("{a}", "-f", "xml"), "--format: unknown format 'xml' (choose from txt, json, srt, vtt, tsv or all; text is txt)"),
    (("{a}", "-o", "x.txt", "-d", "out"), "give --output-dir DIR or -o FILE, not both"),
    (("{a}", "-d", "out", "--force", "--skip-existing"), "give --force or --skip-existing, not both"),
    (("{a}", "--force"), "--force and --skip-existing apply to output files"),
])
def test_output_option_errors_are_one_line(bundle, tree, tmp_path, args, message):
    paths = {"a": tree / "a.flac", "b": tree / "b.wav"}
    result = transcribe(*(a.format(**paths) for a in args), "-m", bundle)
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"error: {message}")


# ---------------------------------------------------------------- damaged audio, closed stdout


def test_truncated_audio_is_transcribed_with_a_warning(bundle, tmp_path):
    rt = Runtime(bundle, full_depth=True)
    clip = speechlike(4.0, seed=11)
    int16 = np.round(clip * 32767).astype(np.int16)
    for ext in ("wav", "flac"):
        whole = tmp_path / f"whole.{ext}"
        sf.write(whole, int16, 16000, subtype="PCM_16")
        cut = tmp_path / f"cut.{ext}"
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        result = transcribe(cut, "-m", bundle, "--full-depth", "-f", "json")
        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"warning: {cut}: ")
        assert re.search(r"transcribing the (\d+\.\d\d) s that could be read", lines[0])
        got = json.loads(result.stdout)
        read = round(float(re.search(r"the (\d+\.\d\d) s", lines[0])[1]) * 16000)
        assert 0.3 * 16000 < read < 2.5 * 16000
        want = rt.transcribe(int16[:read], 16000)  # the samples that were read, transcribed as an array
        assert got["duration"] == pytest.approx(want.duration, abs=0.01)
        assert got["text"] == want.text
    intact = transcribe(tmp_path / "whole.wav", tmp_path / "whole.flac", "-m", bundle)
    assert intact.exit_code == 0 and intact.stderr == ""


def test_closed_stdout_ends_quietly(bundle, tree):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        proc = subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", str(tree), "-m", str(bundle)],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=180,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == b""


# ---------------------------------------------------------------- missing extras, inspect


WITHOUT_EXTRAS = ("import sys\nsys.modules.update(dict.fromkeys(['torch', 'onnx', 'onnxsim', 'onnxscript', "
                  "'matplotlib'], None))\nfrom i3d_edge.cli import main\nsys.argv = ['i3d-edge', *sys.argv[1:]]\n"
                  "main()")


def without_extras(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize(("args", "package"), [
    (("init", "-o", "ckpt.pt"), "PyTorch"),
    (("export", "ckpt.pt", "-o", "bundle"), "onnx"),
    (("train", "-o", "run", "--train", "corpus", "--dev", "corpus"), "PyTorch"),
    (("bench", "--quick", "--random-layers", "2"), "onnx"),
])
def test_missing_extra_is_one_line_with_the_install_command(tmp_path, args, package):
    proc = without_extras(*args, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1:] == [
        f"error: this command needs {package}, from the [export] extra: pip install torch==2.13.0 && "
        "pip install '.[export]' (in the i3d-edge source folder)"]
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 2  # bench logs what it starts


@pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(), reason="no embedded default model")
def test_inspect_reads_the_default_model_without_torch_or_onnx(tmp_path):
    with_onnx = run("inspect", DEFAULT_BUNDLE, "--json")
    assert with_onnx.exit_code == 0
    for args in (("inspect", "--json"), ("inspect", "default", "--json")):
        proc = without_extras(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == json.loads(with_onnx.stdout)  # the same numbers as onnx reads them
    text = without_extras("inspect", cwd=tmp_path)
    assert text.returncode == 0 and "5.63M params" in text.stdout and "word LM" in text.stdout


def test_inspect_prefers_a_directory_named_default(bundle, tmp_path):
    import shutil

    shutil.copytree(bundle, tmp_path / "default")
    proc = without_extras("inspect", "default", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["model_config"]["n_layers"] == 2 and Path(info["bundle"]).resolve() == (tmp_path / "default")


# ---------------------------------------------------------------- help


COMMANDS = ("transcribe", "eval", "inspect", "export", "init", "lm", "train", "analyze", "bench")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_readable(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = result.stdout
    for raw in ("<bool>", "<int>", "<float>", "<str>", "<path>", "list[", "{", "the  extra"):
        assert raw not in text, (command, raw)
    assert re.search(r"Usage: .* " + command + r" \[OPTIONS\]", text)


def test_transcribe_help_names_formats_and_defaults():
    import soundfile

    text = CliRunner().invoke(app, ["transcribe", "--help"], env={"COLUMNS": "300"}).stdout
    assert f"libsndfile {soundfile.__libsndfile_version__}" in text
    for name in soundfile.available_formats():
        if name in ("WAV", "FLAC", "OGG", "MP3"):
            assert name in text
    assert "[OPTIONS] AUDIO..." in text
    assert "[default: 8]" in text and "one per physical core" in text and "[default: txt" in text
    analyze = CliRunner().invoke(app, ["analyze", "--help"], env={"COLUMNS": "300"}).stdout
    assert "pip install '.[plot]'" in analyze
    eval_help = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "300"}).stdout
    assert "fp32|int8" in eval_help


def test_version_stays():
    from i3d_edge import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"{__version__}\n"


def test_json_documents_never_carry_nan_or_infinity():
    import json
    import math

    from i3d_edge.manifest import json_safe

    doc = {"text": "a", "gate_probs": {"layer00.mha": math.nan, "layer00.ffn": 0.25},
           "tokens": [{"start": math.inf, "end": -math.inf}], "rtf": 0.5, "n": 3}
    clean = json_safe(doc)
    assert clean == {"text": "a", "gate_probs": {"layer00.mha": None, "layer00.ffn": 0.25},
                     "tokens": [{"start": None, "end": None}], "rtf": 0.5, "n": 3}
    json.dumps(clean, allow_nan=False)  # raises on any NaN/Infinity left
