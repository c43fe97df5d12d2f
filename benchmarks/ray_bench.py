"""``i3d-edge transcribe --ray`` against plain ``i3d-edge transcribe`` on one folder (benchmarks/RAY.md).

    python benchmarks/ray_bench.py --data /work/shared/data/an4-test/audio --files 200 --repeats 3 \
        --json /tmp/ray_bench.json

The archive: the files of ``--data`` (and ``samples/``), copied, cycling through them, until there
are ``--files`` of them (mixed lengths: AN4 utterances of 1-7 s and the samples). Each repeat runs,
as the user types them: plain ``transcribe DIR --output-dir OUT``, then ``--ray ADDRESS`` with 1
actor, 1 actor of 2 threads and 2 actors (``--modes`` picks among them) against one local head
node started once (``ray start --head --num-cpus 2``, its workers at the command's niceness; its
start-up time is reported on its own), every run into a fresh output folder. Reported per mode:
median wall seconds, files/s, audio hours per wall hour, the aggregate real-time factor (wall /
audio), the ratio to plain (per repeat: the modes interleave, so each compares runs a minute
apart), Ray's overhead per file against plain, and the largest resident memory of each
transcribing actor. Speed measurement only: no text is scored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
I3D = [sys.executable, "-m", "i3d_edge"]
RAY = str(Path(sys.executable).with_name("ray"))


def make_archive(data: Path, files: int, out: Path) -> float:
    """``files`` audio files below ``out`` (copies of data's and the samples'); returns their audio seconds."""
    sources = sorted(p for p in data.iterdir() if p.suffix in (".wav", ".flac"))
    sources += sorted((ROOT / "samples").glob("*.wav"))
    out.mkdir(parents=True)
    seconds = 0.0
    for i in range(files):
        src = sources[i % len(sources)]
        dst = out / f"{i:04d}-{src.name}"
        shutil.copy(src, dst)
        seconds += sf.info(str(dst)).duration
    return seconds


class PeakRss:
    """The largest resident memory of each process whose command line names ``marker``, while it runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.peaks: dict[int, int] = {}
        self.nice: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info", "nice"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                pid, info = proc.info["pid"], proc.info["memory_info"]
                if self.marker in cmd and info is not None:
                    self.peaks[pid] = max(self.peaks.get(pid, 0), info.rss)
                    self.nice.add(proc.info["nice"])

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr[-2000:]}")
    return wall


def start_head(temp: str) -> tuple[subprocess.Popen, str, float]:
    """A head node of 2 CPUs; returns it, its address and the seconds until a driver could join it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    start = time.perf_counter()
    # Ray gives its workers a niceness 15 above the raylet's (worker_niceness): here they keep the
    # priority of the command, as plain transcribe does, so that a busy machine slows both alike
    head = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--block", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "RAY_worker_niceness": "0"})
    probe = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); print(ray.cluster_resources())"
    subprocess.run([sys.executable, "-c", probe, address], check=True, capture_output=True, timeout=900)
    return head, address, time.perf_counter() - start


def stop_head(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started ...
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:  # ... and whatever of its session outlived it goes too
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of .wav/.flac files")
    parser.add_argument("--files", type=int, default=130)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--modes", default="plain,ray1,ray1x2,ray2",
                        help="which runs, comma-separated: plain, ray1, ray1x2, ray2 (plain is always run)")
    args = parser.parse_args()
    chosen = {"plain", *args.modes.split(",")}

    work = Path(tempfile.mkdtemp(prefix="ray_bench_"))
    ray_temp = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths live below it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    audio = make_archive(args.data, args.files, work / "archive")
    head, address, startup = start_head(ray_temp)
    every = {
        "plain": ("plain", []),
        "ray1": ("ray, 1 actor", ["--ray", address, "--ray-actors", "1"]),
        # one actor holding both cores, as plain transcribe does (its onnxruntime uses every core):
        # the like-for-like measure of Ray's own overhead
        "ray1x2": ("ray, 1 actor x 2 threads", ["--ray", address, "--ray-actors", "1", "--threads", "2"]),
        "ray2": ("ray, 2 actors", ["--ray", address, "--ray-actors", "2"]),
    }
    modes = dict(every[key] for key in every if key in chosen)
    walls: dict[str, list[float]] = {m: [] for m in modes}
    memory: dict[str, list[int]] = {m: [] for m in modes}
    nice: set[int] = set()
    try:
        for r in range(args.repeats):
            for mode, extra in modes.items():
                out = work / f"out-{r}-{mode.replace(' ', '').replace(',', '')}"
                with PeakRss("_Transcriber") as peaks:
                    walls[mode].append(timed([*I3D, "transcribe", str(work / "archive"), "--output-dir", str(out),
                                              *extra], env))
                memory[mode] += list(peaks.peaks.values())
                nice |= peaks.nice
                print(f"repeat {r} {mode}: {walls[mode][-1]:.1f} s", flush=True)
                shutil.rmtree(out)
    finally:
        stop_head(head)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_temp, ignore_errors=True)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    plain = statistics.median(walls["plain"])
    report = {"files": args.files, "audio_seconds": round(audio, 1), "ray_head_startup_seconds": round(startup, 1),
              "uptime_before": uptime_before, "uptime_after": uptime_after, "cpus": os.cpu_count(),
              "driver_nice": os.nice(0), "actor_nice": sorted(nice), "modes": {}}
    for mode in modes:
        wall = statistics.median(walls[mode])
        report["modes"][mode] = {
            "walls": [round(w, 2) for w in walls[mode]], "median_wall_seconds": round(wall, 2),
            "files_per_second": round(args.files / wall, 2),
            "audio_hours_per_wall_hour": round(audio / wall, 1), "aggregate_rtf": round(wall / audio, 4),
            # the repeats interleave the modes: each repeat's ratio compares runs taken minutes apart
            "wall_vs_plain_per_repeat": [round(w / p, 2) for w, p in zip(walls[mode], walls["plain"], strict=True)],
            "wall_vs_plain": round(wall / plain, 2),
            "overhead_per_file_seconds": round((wall - plain) / args.files, 4),
            "actor_peak_rss_mb": sorted(round(m / 2**20) for m in memory[mode]),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
