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

JSON_KEYS = {"audio", "text", "tokens", "modules_executed", "modules_total", "duration", "rtf",
             "executed_modules", "gate_probs", "timings"}


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
        assert all(tok.keys() == {"token", "start", "end"} for tok in obj["tokens"])
        assert set(obj["timings"]) >= {"load", "features", "frontend", "gates", "modules", "head", "decode", "total"}
        # values, not just keys: probabilities to 6 decimals, tokens and segments as transcribed
        assert obj["gate_probs"] == pytest.approx(dict(want.gate_probs), abs=1e-6)
        assert list(obj["gate_probs"]) == list(rt.module_names)
        assert obj["executed_modules"] == list(want.executed_modules)
        assert [(t["token"], t["start"], t["end"]) for t in obj["tokens"]] == \
            [(t.token, pytest.approx(t.start, abs=5e-4), pytest.approx(t.end, abs=5e-4)) for t in want.tokens]
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
    assert "int8" in one_line_failure(audio["a"], "-m", bundle, "--precision", "int8")


def test_installed_entry_point(bundle, audio):
    proc = subprocess.run([sys.executable, "-m", "i3d_edge", "transcribe", str(audio["a"]), str(audio["a"]) + ".nope",
                           "--model", str(bundle), "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["audio"] == str(audio["a"])
    assert proc.stderr == f"error: {audio['a']}.nope: no such file\n"
