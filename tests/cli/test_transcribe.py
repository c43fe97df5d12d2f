"""``i3d-edge transcribe``: output formats, per-file errors, bundle errors, exit codes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import i3d_edge.cli.transcribe  # noqa: F401  (registers the command)
from i3d_edge.cli import app
from i3d_edge.runtime import Runtime
from tests.conftest import speechlike

JSON_KEYS = {"audio", "text", "confidence", "words", "tokens", "modules_executed", "modules_total", "duration",
             "rtf", "executed_modules", "gate_probs", "timings"}


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2)


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli-audio")
    files = {"a": d / "a.wav", "b": d / "b.flac", "long": d / "long.ogg"}
    sf.write(files["a"], speechlike(1.2, seed=1), 16000)
    sf.write(files["b"], (speechlike(2.0, sr=44100, seed=2) * 32767).astype(np.int16), 44100)
    sf.write(files["long"], speechlike(20.0, seed=3), 16000)
    return files


def invoke(*args: str):
    result = CliRunner().invoke(app, ["transcribe", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_json_lines_have_the_documented_keys(bundle, audio):
    result = invoke(audio["a"], audio["b"], "--model", bundle, "--format", "json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    rt = Runtime(bundle)
    for line, path in zip(lines, (audio["a"], audio["b"]), strict=True):
        obj = json.loads(line)
        assert JSON_KEYS <= obj.keys()
        assert obj["audio"] == str(path)
        want = rt.transcribe(path)
        assert obj["text"] == want.text and obj["modules_total"] == 4
        assert obj["modules_executed"] == len(obj["executed_modules"]) == want.modules_executed
        assert obj["duration"] == pytest.approx(want.duration, abs=1e-3) and obj["rtf"] >= 0
        assert all(tok.keys() == {"token", "start", "end", "confidence"} for tok in obj["tokens"])
        assert set(obj["timings"]) >= {"load", "features", "frontend", "gates", "modules", "head", "decode", "total"}
        # values, not just keys: probabilities to 6 decimals, tokens and segments as transcribed
        assert obj["gate_probs"] == pytest.approx(dict(want.gate_probs), abs=1e-6)
        assert list(obj["gate_probs"]) == list(rt.module_names)
        assert obj["executed_modules"] == list(want.executed_modules)
        assert [(t["token"], t["start"], t["end"], t["confidence"]) for t in obj["tokens"]] == \
            [(t.token, pytest.approx(t.start, abs=5e-4), pytest.approx(t.end, abs=5e-4),
              pytest.approx(t.confidence, abs=5e-5)) for t in want.tokens]
        assert [(w["word"], w["start"], w["end"], w["confidence"]) for w in obj["words"]] == \
            [(w.word, pytest.approx(w.start, abs=5e-4), pytest.approx(w.end, abs=5e-4),
              pytest.approx(w.confidence, abs=5e-5)) for w in want.words]
        assert " ".join(w["word"] for w in obj["words"]) == obj["text"]
        assert obj["confidence"] == (None if want.confidence is None else pytest.approx(want.confidence, abs=5e-5))
        assert [(s["start"], s["end"], s["text"], s["executed_modules"]) for s in obj["segments"]] == \
            [(pytest.approx(s.start, abs=5e-4), pytest.approx(s.end, abs=5e-4), s.text, list(s.executed_modules))
             for s in want.segments]
        assert len(obj["segments"]) == 1 and obj["segments"][0]["text"] == obj["text"]
        for seg_json, seg in zip(obj["segments"], want.segments, strict=True):
            assert seg_json["gate_probs"] == pytest.approx(dict(seg.gate_probs), abs=1e-6)


def test_text_is_one_line_per_file(bundle, audio):
    rt = Runtime(bundle, threshold=0.2)
    single = invoke(audio["a"], "-m", bundle, "--threshold", "0.2")
    assert single.exit_code == 0 and single.stdout == rt.transcribe(audio["a"]).text + "\n"
    several = invoke(audio["a"], audio["b"], "-m", bundle, "--threshold", "0.2", "--batch-size", "1")
    assert several.stdout.splitlines() == [f"{audio[k]}: {rt.transcribe(audio[k]).text}" for k in ("a", "b")]


def test_knobs_reach_the_runtime(bundle, audio):
    full = json.loads(invoke(audio["a"], "-m", bundle, "-f", "json", "--full-depth").stdout)
    none = json.loads(invoke(audio["a"], "-m", bundle, "-f", "json", "--max-modules", "0").stdout)
    assert full["modules_executed"] == 4 and none["modules_executed"] == 0
    padded = json.loads(invoke(audio["a"], "-m", bundle, "-f", "json", "--edge-silence", "0.15").stdout)
    want = Runtime(bundle, edge_silence=0.15).transcribe(audio["a"])
    assert padded["text"] == want.text and padded["modules_executed"] == want.modules_executed


SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)")


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def check_cues(cues: list[tuple[float, float, str]], duration: float) -> None:
    assert len(cues) >= 2
    for (start, end, text), following in zip(cues, [*cues[1:], None], strict=True):
        assert 0 <= start < end <= duration + 1e-3 and end - start <= 7.0 + 1e-3
        assert 0 < len(text) <= 42 and text == text.strip()
        if following:
            assert end <= following[0]


def test_srt_is_well_formed(bundle, audio):
    result = invoke(audio["long"], "-m", bundle, "--format", "srt", "--threshold", "0.1")
    assert result.exit_code == 0
    blocks = result.stdout.strip("\n").split("\n\n")
    cues = []
    for number, block in enumerate(blocks, 1):
        match = SRT_CUE.fullmatch(block)
        assert match, block
        assert int(match[1]) == number
        cues.append((seconds(*match.groups()[1:5]), seconds(*match.groups()[5:9]), match[10]))
    check_cues(cues, 20.0)


def test_vtt_is_well_formed(bundle, audio):
    result = invoke(audio["long"], "-m", bundle, "--format", "vtt", "--threshold", "0.1")
    assert result.exit_code == 0
    header, *blocks = result.stdout.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        match = VTT_CUE.fullmatch(block)
        assert match, block
        cues.append((seconds(*match.groups()[0:4]), seconds(*match.groups()[4:8]), match[9]))
    check_cues(cues, 20.0)


def test_bad_files_fail_alone(bundle, audio, tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    sf.write(tmp_path / "short.wav", speechlike(0.03), 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    nan = speechlike(1.0)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    (tmp_path / "folder.wav").mkdir()
    bad = {name: tmp_path / name for name in ("garbage.wav", "short.wav", "empty.wav", "nan.wav", "folder.wav",
                                              "missing.wav")}
    result = invoke(audio["a"], *bad.values(), audio["b"], "-m", bundle, "--format", "json", "--batch-size", "3")
    assert result.exit_code == 1
    assert [json.loads(line)["audio"] for line in result.stdout.splitlines()] == [str(audio["a"]), str(audio["b"])]
    errors = result.stderr.splitlines()
    assert len(errors) == len(bad)
    for line, (name, path) in zip(errors, bad.items(), strict=True):
        assert line.startswith(f"error: {path}: "), (name, line)
    for cause in ("not a readable audio file", "too short", "empty audio", "NaN or infinite",
                  "no files with an audio extension", "no such file"):
        assert sum(cause in line for line in errors) == 1, cause


def one_line_failure(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_bundle_and_option_errors_are_one_line(bundle, audio, tmp_path):
    assert "no such bundle directory" in one_line_failure(audio["a"], "-m", tmp_path / "nowhere")
    broken = Path(shutil.copytree(bundle, tmp_path / "broken"))
    head = next((broken / "fp32").glob("head*.onnx"))
    head.write_bytes(head.read_bytes()[:-1])
    assert "SHA-256 mismatch" in one_line_failure(audio["a"], "-m", broken)
    assert "threshold must be in [0, 1)" in one_line_failure(audio["a"], "-m", bundle, "--threshold", "1.5")
    assert "batch_size" in one_line_failure(audio["a"], "-m", bundle, "--batch-size", "0")
    assert "edge_silence must be 0-1 seconds" in one_line_failure(audio["a"], "-m", bundle, "--edge-silence", "2")
    assert "int8" in one_line_failure(audio["a"], "-m", bundle, "--precision", "int8")


def test_installed_entry_point(bundle, audio):
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", str(audio["a"]), str(audio["a"]) + ".nope",
                           "--model", str(bundle), "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["audio"] == str(audio["a"])
    assert proc.stderr == f"error: {audio['a']}.nope: no such file\n"


def test_words_carry_the_confidence_of_their_tokens(bundle, audio):
    """Words are the tokens between separators, timed from their first to their last token, with
    the mean confidence of their tokens; the utterance's is the mean over the tokens said."""
    obj = json.loads(invoke(audio["long"], "-m", bundle, "-f", "json", "--threshold", "0.1").stdout)
    said = [t for t in obj["tokens"] if t["token"] != " "]
    assert obj["words"] and obj["text"] == " ".join(w["word"] for w in obj["words"])
    position = 0
    for word in obj["words"]:
        mine = said[position: position + len(word["word"])]  # one character per token in this vocabulary
        position += len(mine)
        assert "".join(t["token"] for t in mine) == word["word"]
        assert (word["start"], word["end"]) == (mine[0]["start"], mine[-1]["end"])
        assert word["confidence"] == pytest.approx(sum(t["confidence"] for t in mine) / len(mine), abs=2e-4)
        assert 0 < word["confidence"] <= 1
    assert position == len(said)
    assert obj["confidence"] == pytest.approx(sum(t["confidence"] for t in said) / len(said), abs=2e-4)


def test_txt_tsv_and_the_text_alias(bundle, audio):
    rt = Runtime(bundle, threshold=0.1)
    want = rt.transcribe(audio["long"])
    for name in ("txt", "text", "TEXT"):
        assert invoke(audio["long"], "-m", bundle, "-f", name, "--threshold", "0.1").stdout == want.text + "\n"
    tsv = invoke(audio["long"], "-m", bundle, "-f", "tsv", "--threshold", "0.1", "--max-line-chars", "20").stdout
    header, *rows = tsv.splitlines()
    assert header == "start\tend\ttext" and len(rows) >= 2
    cells = [row.split("\t") for row in rows]
    # every character once, in order (a word longer than a line is cut into lines)
    assert "".join(text for _, _, text in cells) == want.text.replace(" ", "")
    assert all(len(text) <= 20 and int(start) < int(end) for start, end, text in cells)
    assert [int(start) for start, _, _ in cells] == sorted(int(start) for start, _, _ in cells)


def test_max_line_chars_shapes_the_subtitle_lines(bundle, audio):
    for n in (12, 30):
        srt = invoke(audio["long"], "-m", bundle, "-f", "srt", "--threshold", "0.1", "--max-line-chars", str(n))
        lines = [block.split("\n")[2] for block in srt.stdout.strip("\n").split("\n\n")]
        assert max(len(line) for line in lines) <= n and max(len(line) for line in lines) > n - 8
    assert one_line_failure(audio["a"], "-m", bundle, "-f", "srt", "--max-line-chars", "0") == \
        "error: --max-line-chars must be at least 1, got 0"


def test_no_module_run_is_a_warning(bundle, audio):
    """--max-modules 0 (or a threshold no gate passes) runs no encoder module: the text is still
    printed, with one warning line per such input."""
    result = invoke(audio["a"], audio["b"], "-m", bundle, "--max-modules", "0")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {path}: no encoder module ran (--threshold or --max-modules left none): this text comes from "
        "the frontend and the head alone" for path in (audio["a"], audio["b"])]
    assert len(result.stdout.splitlines()) == 2
    ran = invoke(audio["a"], "-m", bundle, "--max-modules", "1")
    assert ran.exit_code == 0 and ran.stderr == ""


def test_batch_json_timings_are_each_inputs_own(bundle, audio):
    """Two inputs sharing one batch: each JSON record's encoder timings are its share of the batch
    (by encoder frames), not copies of the batch's totals; its reading and features are its own."""
    rows = [json.loads(line) for line in invoke(audio["a"], audio["b"], "-m", bundle, "-f", "json",
                                                "--batch-size", "8").stdout.splitlines()]
    a, b = (row["timings"] for row in rows)
    frames = [row["duration"] for row in rows]  # 1.2 s and 2.0 s: encoder frames in proportion
    for stage in ("frontend", "gates", "head"):
        assert a[stage] != b[stage]
        assert a[stage] / b[stage] == pytest.approx(frames[0] / frames[1], rel=0.05)
    for row in rows:
        t = row["timings"]
        assert t["total"] == pytest.approx(sum(v for k, v in t.items() if k != "total"), abs=1e-5)
