"""Where the seconds of one ``i3d-edge transcribe DIR --output-dir OUT --ray ADDRESS`` run go (benchmarks/RAY.md).

    RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$(python -c 'import secrets; print(secrets.token_hex(16))') \
        python benchmarks/ray_profile.py --data /work/shared/data/an4-test/audio --files 200 --actors 2

Builds the archive and starts the head node as ``ray_bench.py`` does, runs the command once to let
the cluster create what Ray Data creates once per cluster (its detached helper actors), then runs it
again in a child process that stamps the driver's stages (interpreter start, imports, ``ray.init``,
the Dataset of paths, the bundle, the first and last batch, the Parquet table, exit), while this
process samples every process's CPU seconds (the driver, the actors, Ray's own daemons). The
actors' side comes from ``ray.timeline()``: process start, ``__init__`` (bundle, Runtime), the
batches. Prints one table of wall seconds per stage and one of CPU seconds per process (``--json``
keeps both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ray_bench  # the archive and the head node, as the benchmark makes them

ROOT = Path(__file__).resolve().parents[1]


def child(out: Path, args: list[str]) -> None:
    """The driver, stamped: the real command line, with timing wrappers around its Ray stages."""
    start = psutil.Process().create_time()
    marks: list[tuple[str, float]] = [("interpreter up", time.time() - start)]

    def mark(name: str) -> None:
        marks.append((name, time.time() - start))

    import i3d_edge.cli.transcribe  # noqa: F401  (registers the command)
    from i3d_edge.apps import ray_batch
    from i3d_edge.cli import app

    mark("i3d_edge command line imported")

    def stamped(name: str, label: str) -> None:
        inner = getattr(ray_batch, name)

        def call(*a: Any, **k: Any) -> Any:
            mark(f"{label} start")
            try:
                return inner(*a, **k)
            finally:
                mark(f"{label} end")
        setattr(ray_batch, name, call)

    for name, label in [("transcribe_files", "transcribe_files"), ("connect", "ray.init"),
                        ("_items", "Dataset of paths"), ("_pack_bundle", "bundle read"),
                        ("transcribe_dataset", "map_batches plan + ray.put bundle"),
                        ("_write_table", "Parquet table")]:
        stamped(name, label)
    datasets: list[Any] = []
    plan = ray_batch.transcribe_dataset

    def planned(*a: Any, **k: Any) -> Any:  # the result's batches, stamped as they arrive
        ds = plan(*a, **k)
        datasets.append(ds)
        batches = type(ds).iter_batches

        def iter_batches(self: Any, *a: Any, **k: Any) -> Any:
            mark("iter_batches (execution starts)")
            for i, batch in enumerate(batches(self, *a, **k)):
                if i == 0:
                    mark("first batch arrives")
                yield batch
            mark("last batch arrived")
        type(ds).iter_batches = iter_batches
        return ds
    ray_batch.transcribe_dataset = planned
    try:
        app(["transcribe", *args], standalone_mode=False)
    except SystemExit:
        pass
    mark("command returned")
    import ray

    timeline = ray.timeline()
    stats = datasets[0].stats() if datasets else ""
    ray.shutdown()
    mark("ray.shutdown")
    out.write_text(json.dumps({"start": start, "marks": marks, "timeline": timeline, "stats": stats}))


def sample(proc: subprocess.Popen, every: float = 0.2) -> dict[int, dict[str, Any]]:
    """CPU seconds (during the run) and names of Ray's and the driver's processes, until ``proc`` ends."""
    before = {}
    for p in psutil.process_iter(["pid", "cpu_times"]):
        if p.info["cpu_times"] is not None:
            before[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
    seen: dict[int, dict[str, Any]] = {}
    while True:
        done = proc.poll() is not None
        for p in psutil.process_iter(["pid", "cmdline", "cpu_times", "create_time"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["cpu_times"] is None or not (p.pid == proc.pid or "ray" in cmd):
                continue
            cpu = p.info["cpu_times"].user + p.info["cpu_times"].system - before.get(p.pid, 0.0)
            row = seen.setdefault(p.pid, {"created": p.info["create_time"], "cpu": 0.0, "names": []})
            row["cpu"] = max(row["cpu"], cpu)
            name = "driver" if p.pid == proc.pid else cmd.split(" ")[0].rsplit("/", 1)[-1][:60]
            if name not in row["names"]:
                row["names"].append(name)
        if done:
            return seen
        time.sleep(every)


def report(data: dict[str, Any], procs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    start = data["start"]
    marks = dict(data["marks"])
    events = [e for e in data["timeline"] if e.get("ph") == "X" and e["ts"] / 1e6 >= start]
    inits = sorted((e["ts"] / 1e6 - start, e["dur"] / 1e6) for e in events
                   if e["name"] == "__init__" and "_Transcriber" in e.get("cat", ""))
    runs = sorted((e["ts"] / 1e6 - start, e["dur"] / 1e6, e["tid"]) for e in events
                  if e["name"] == "submit" and "_Transcriber" in e.get("cat", ""))
    actors = {pid: row for pid, row in procs.items() if any("_Transcriber" in n for n in row["names"])}
    spawned = sorted(row["created"] - start for row in actors.values())
    stages = {
        "python start + i3d_edge command line imported": marks["i3d_edge command line imported"],
        "inputs listed, outputs planned": marks["transcribe_files start"] - marks["i3d_edge command line imported"],
        "import ray, ray.data, pyarrow": marks["ray.init start"] - marks["transcribe_files start"],
        "ray.init (join the head)": marks["ray.init end"] - marks["ray.init start"],
        "cluster_resources + Dataset of paths": marks["Dataset of paths end"] - marks["ray.init end"],
        "bundle read + ray.put + map_batches plan": marks["iter_batches (execution starts)"]
                                                    - marks["Dataset of paths end"],
        # Ray starts the job's worker processes when the driver joins; two of them become the actors
        "ray.init -> first actor's worker process started": (spawned[0] - marks["ray.init end"]
                                                              if spawned else None),
        "worker process start -> actor __init__ (python, import ray, ray.data, i3d_edge; waits for execution)": (
            inits[0][0] - spawned[0] if inits and spawned else None),
        "actor __init__ (bundle fetched + unpacked, Runtime loaded)": inits[0][1] if inits else None,
        "first batch running -> first batch at the driver": (marks["first batch arrives"] - runs[0][0]
                                                              if runs else None),
        "execution starts -> first batch at the driver": marks["first batch arrives"]
                                                         - marks["iter_batches (execution starts)"],
        "first -> last batch (transcribing, files written as rows arrive)": marks["last batch arrived"]
                                                                            - marks["first batch arrives"],
        "Parquet table": marks["Parquet table end"] - marks["Parquet table start"],
        "summary + command returns": marks["command returned"] - marks["Parquet table end"],
        "ray.shutdown": marks["ray.shutdown"] - marks["command returned"] - 0.0,
    }
    busy = sum(d for _, d, _ in runs)
    return {
        "stages_seconds": {k: None if v is None else round(v, 2) for k, v in stages.items()},
        "command_seconds": round(marks["command returned"], 2),
        "batches": len(runs), "batch_seconds_total": round(busy, 2),
        "batch_seconds_mean": round(busy / len(runs), 3) if runs else None,
        "actor_inits": [[round(t, 2), round(d, 2)] for t, d in inits],
        "cpu_seconds": sorted(([" / ".join(r["names"]), round(r["cpu"], 2)] for r in procs.values()
                               if r["cpu"] >= 0.05), key=lambda x: -x[1]),
        "ray_data_stats": data["stats"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1:])
        return
    if args.data is None:
        parser.error("--data is required")
    work = Path(tempfile.mkdtemp(prefix="ray_profile_"))
    ray_temp = tempfile.mkdtemp(prefix="rp", dir="/tmp")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ray_bench.make_archive(args.data, args.files, work / "archive")
    head, address, startup = ray_bench.start_head(ray_temp)
    try:
        cli = [str(work / "archive"), "--ray", address, "--ray-actors", str(args.actors),
               "--threads", str(args.threads)]
        ray_bench.timed([*ray_bench.I3D, "transcribe", *cli, "--output-dir", str(work / "warm")], env)
        out = work / "profile.json"
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(out), *cli, "--output-dir",
                                 str(work / "out")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        procs: dict[int, dict[str, Any]] = {}
        sampler = threading.Thread(target=lambda: procs.update(sample(proc)))
        sampler.start()
        _, stderr = proc.communicate(timeout=3600)
        sampler.join()
        if not out.exists():
            raise SystemExit(f"the profiled run failed: {stderr[-2000:]}")
        result = {"files": args.files, "actors": args.actors, "threads": args.threads,
                  "ray_head_startup_seconds": round(startup, 1), **report(json.loads(out.read_text()), procs)}
    finally:
        ray_bench.stop_head(head)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_temp, ignore_errors=True)
    for stage, seconds in result["stages_seconds"].items():
        print(f"{'-' if seconds is None else f'{seconds:6.2f}':>6}  {stage}")
    print(f"{result['command_seconds']:6.2f}  the command, start to return; {result['batches']} batches, "
          f"{result['batch_seconds_total']} s in them")
    for name, cpu in result["cpu_seconds"]:
        print(f"{cpu:6.2f} CPU s  {name}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
