#!/usr/bin/env python
"""The benchmark suite of issue #6: the default model and a larger random-weight model, one run.

    python benchmarks/run.py                      # full suite, 1 thread -> benchmarks/RESULTS.md
    python benchmarks/run.py --threads 1,2        # the suite once per thread count
    python benchmarks/run.py --quick              # development run (few repeats, 60 s long file)

The default model is the embedded bundle (``i3d_edge/assets/default``) when it exists, measured
on real speech (LJ Speech dev clips) when ``../shared/data/ljspeech-dev`` is there; until the
default model is trained, a random-weight stand-in of its size (12 layers, d_model 192) is
exported and measured on synthetic speech. The large model is random-weight, 18 layers,
d_model 256. Random bundles are exported once and cached (``--cache-dir``). Measurements and
targets: see ``benchmarks/README.md``, :mod:`i3d_edge.apps.bench` and ``benchmarks/targets.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import targets  # noqa: E402  (benchmarks/targets.py: the verdicts, development-only)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2 (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per utterance length (default 10)")
    parser.add_argument("--long-repeats", type=int, default=None, help="timed rounds of the long file (default 3)")
    parser.add_argument("--quick", action="store_true", help="development run: 3 rounds, 60 s long file")
    parser.add_argument("--models", default="default,large", help="which models: default, large (default both)")
    parser.add_argument("--default-model", type=Path, default=None,
                        help="bundle to use as the default model (default: the embedded one, or a stand-in)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint of the default model for the PyTorch baseline (default: random init)")
    parser.add_argument("--audio", default=None,
                        help="test audio of the default model: synthetic, ljspeech or a directory "
                             "(default: ljspeech for a trained embedded model, else synthetic)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where random bundles are cached")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md",
                        help="markdown report (default benchmarks/RESULTS.md)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the raw JSON reports here (default: beside the markdown, .json)")
    args = parser.parse_args(argv)

    from i3d_edge.apps.bench import BenchConfig, render_markdown, run_bench
    from i3d_edge.runtime import DEFAULT_BUNDLE

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - {"default", "large"}
    if unknown or not models or not threads or min(threads) < 1:
        parser.error(f"bad --models/--threads: {args.models!r} {args.threads!r}")
    common = {"repeats": args.repeats, "long_repeats": args.long_repeats, "cache_dir": args.cache_dir}
    ljspeech = ROOT.parent / "shared" / "data" / "ljspeech-dev" / "audio"

    configs = []
    for model in models:
        if model == "default":
            bundle = args.default_model
            if bundle is None and (DEFAULT_BUNDLE / "manifest.json").is_file():
                bundle = DEFAULT_BUNDLE
            if bundle is not None:
                audio = args.audio or ("ljspeech" if ljspeech.is_dir() else "synthetic")
                audio = str(ljspeech) if audio == "ljspeech" else audio
                configs.append({"model": bundle, "checkpoint": args.checkpoint, "audio": audio,
                                "name": f"default model ({bundle.name if bundle != DEFAULT_BUNDLE else 'embedded'})"})
            else:
                configs.append({"random_layers": 12, "random_d_model": 192, "audio": "synthetic",
                                "name": "default-size stand-in (random weights, 12 layers, d_model 192: "
                                        "no trained default model embedded yet)"})
        else:
            configs.append({"random_layers": 18, "random_d_model": 256, "audio": "synthetic",
                            "name": "large model (random weights, 18 layers, d_model 256)"})

    reports = []
    started = time.perf_counter()
    for n in threads:
        for knobs in configs:
            values = {k: v for k, v in {**common, **knobs, "threads": n}.items() if v is not None}
            cfg = BenchConfig.quick_preset(**values) if args.quick else BenchConfig(**values)
            _log(f"{cfg.name}, {n} thread(s)")
            report = run_bench(cfg, log=_log)
            report["targets"] = targets(report)
            report["model"]["name"] = f"{report['model']['name']}, {n} thread{'s' if n > 1 else ''}"
            reports.append(report)
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    markdown = render_markdown(reports, command=command)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown, encoding="utf-8")
    raw = args.json or args.output.with_suffix(".json")
    raw.write_text(json.dumps({"command": command, "reports": reports}, indent=1) + "\n", encoding="utf-8")
    _log(f"wrote {args.output} and {raw} in {(time.perf_counter() - started) / 60:.1f} min")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
