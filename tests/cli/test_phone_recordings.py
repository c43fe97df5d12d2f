"""``i3d-edge transcribe phone.m4a``: what phones and cameras record (m4a, mp4, webm, aac), read
through FFmpeg (the [av] extra), from files, folders and stdin; without the extra, one line that
says how to get it. The files are written with PyAV itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from i3d_edge.audio import load_audio
from i3d_edge.cli import app
from i3d_edge.extras import install_hint
from i3d_edge.runtime import Runtime
from tests.conftest import ROOT, speechlike
from tests.ffmpeg_files import FFMPEG_FILES, write_ffmpeg

pytest.importorskip("av", reason="the FFmpeg path needs the [av] extra (in [dev])")


@pytest.fixture(scope="module")
def bundle(make_bundle) -> Path:
    return make_bundle("global", 2)


@pytest.fixture(scope="module")
def phone(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("phone")
    stereo = np.stack([speechlike(2.5, sr=44100, seed=21), speechlike(2.5, sr=44100, seed=22)], axis=1)  # (N, 2)
    return {suffix: write_ffmpeg(d / f"phone.{suffix}", stereo, 44100, video=suffix == "mp4")
            for suffix in FFMPEG_FILES}


def transcribe(*args: object, input: bytes | None = None):
    result = CliRunner().invoke(app, ["transcribe", *map(str, args)], input=input)
    assert "Traceback" not in result.output
    return result


def test_phone_m4a_is_transcribed(bundle, phone):
    result = transcribe(phone["m4a"], "-m", bundle, "-f", "json", "--threshold", "0.2")
    assert result.exit_code == 0 and result.stderr == "", result.output
    got = json.loads(result.stdout)
    rt = Runtime(bundle, threshold=0.2)
    want = rt.transcribe(load_audio(phone["m4a"]), 16000)  # the decoded samples, transcribed as an array
    assert (got["text"], got["modules_executed"]) == (want.text, want.modules_executed)
    assert got["duration"] == pytest.approx(2.5, abs=0.1)


def test_every_phone_format_from_a_folder_and_from_stdin(bundle, phone):
    folder = transcribe(phone["m4a"].parent, "-m", bundle, "-f", "json", "--threshold", "0.2")
    assert folder.exit_code == 0, folder.output
    rows = [json.loads(line) for line in folder.stdout.splitlines()]
    assert [Path(r["audio"]).name for r in rows] == sorted(f"phone.{s}" for s in FFMPEG_FILES)  # path order
    rt = Runtime(bundle, threshold=0.2)
    for row in rows:
        assert row["text"] == rt.transcribe(row["audio"]).text
    for suffix in ("m4a", "webm"):
        piped = transcribe("-", "-m", bundle, "-f", "json", "--threshold", "0.2", input=phone[suffix].read_bytes())
        assert piped.exit_code == 0, piped.output
        row = json.loads(piped.stdout)
        assert row["audio"] == "-" and row["text"] == rt.transcribe(phone[suffix]).text


WITHOUT_AV = ("import sys\nsys.modules['av'] = None\nfrom i3d_edge.cli import main\n"
              "sys.argv = ['i3d-edge', *sys.argv[1:]]\nmain()")


def test_without_the_extra_one_line_says_how_to_get_it(bundle, phone):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_AV, "transcribe", str(phone["m4a"]), "-m", str(bundle)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {phone['m4a']}: not a readable audio file (formats: WAV")
    assert lines[0].endswith(f"; M4A, MP4, AAC, WebM need the [av] extra: {install_hint('av')}")
    assert install_hint("av") == "pip install '.[av]' (in the i3d-edge source folder)"
    help_text = subprocess.run([sys.executable, "-c", WITHOUT_AV, "transcribe", "--help"], capture_output=True,
                               text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"})
    flat = " ".join(help_text.stdout.replace("│", " ").split())  # the help panel wraps long lines
    assert f"M4A, MP4, AAC, WEBM, ... with the [av] extra ({install_hint('av')})" in flat


def test_help_says_which_library_reads_which_format():
    import av

    text = CliRunner().invoke(app, ["transcribe", "--help"], env={"COLUMNS": "300"}).stdout
    assert f"M4A, MP4, AAC, WEBM, ... (FFmpeg, PyAV {av.__version__})" in text
