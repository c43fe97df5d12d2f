"""Run the README's "Deploy your own model" commands line by line, as written.

A tiny random ``Wav2Vec2ForCTC`` stands in for the download: it is saved, with the library's own
``save_pretrained`` (model and processor), into a Hugging Face cache under the README's model id,
and every command runs with ``HF_HUB_OFFLINE=1`` and that cache. A small corpus (``my_corpus/train``
and ``my_corpus/dev``) and ``meeting.wav`` are written to the work folder. The first line (the
install) runs in the source folder, the others in the work folder; each must exit 0, and the last
must print a transcript.

    python scripts/readme_deploy.py --fresh --work /tmp/deploy      # a new venv; the install line runs
    python scripts/readme_deploy.py --work /tmp/deploy --minutes 0.1  # this environment; install skipped

``--minutes M`` replaces the README's ``--max-minutes`` value (the only change to any line), so that a
check need not train for half an hour; ``--fresh`` without it runs the lines exactly as written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "aa" * 20
HELPER = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import numpy as np, soundfile as sf, transformers as tf
from tests.hf_models import build_hf_model


def speechlike(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 110 + 40 * rng.random()
    sig = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 8))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + 3 * rng.random()) * t) ** 2
    return (0.2 * env * sig + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


snapshot, work = Path(sys.argv[2]), Path(sys.argv[3])
build_hf_model("Wav2Vec2ForCTC", False, snapshot)
(snapshot / "preprocessor_config.json").unlink()  # the library writes the processor's settings
fe = tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
tf.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tf.Wav2Vec2CTCTokenizer(str(snapshot / "vocab.json"))
                     ).save_pretrained(str(snapshot))
texts = ["one two", "three", "four five six", "seven", "eight nine", "zero"]
for part in ("train", "dev"):
    d = work / "my_corpus" / part
    (d / "audio").mkdir(parents=True, exist_ok=True)
    with open(d / "transcripts.tsv", "w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            sf.write(d / "audio" / f"u{i}.wav", speechlike(0.5 + 0.3 * i, seed=i + (part == "dev") * 10), 16000)
            fh.write(f"u{i}\t{text}\n")
sf.write(work / "meeting.wav", speechlike(3.0, seed=99), 16000)
"""


def readme_lines(readme: Path) -> list[str]:
    """The commands of the Deploy section's bash block, continuation lines joined, comments dropped."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Deploy your own model"):]
    section = section[: section.index("\n## ", 3)]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README: no bash block in the Deploy section")
    joined = block.group(1).replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", ln).strip() for ln in joined.splitlines() if ln.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="empty work folder (the user's folder)")
    ap.add_argument("--fresh", action="store_true", help="create WORK/venv and run the install line there")
    ap.add_argument("--minutes", type=float, default=None, help="replace the --max-minutes value")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if any(p.name != "venv" for p in work.iterdir()):
        raise SystemExit(f"{work}: not empty")
    lines = readme_lines(ROOT / "README.md")
    if not lines[0].startswith("pip install"):
        raise SystemExit(f"README: the first line is not the install: {lines[0]}")
    model_id = next(re.search(r"i3d-edge import (\S+)", ln).group(1) for ln in lines if "i3d-edge import" in ln)
    if args.fresh:
        venv.create(work / "venv", with_pip=True)
        bindir = work / "venv" / "bin"
    else:
        bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HOME": str(work / "hf_home"),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "VIRTUAL_ENV": str(bindir.parent)}
    env.pop("PYTHONPATH", None)
    cache = work / "hf_home" / "hub" / ("models--" + model_id.replace("/", "--"))
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text(COMMIT)
    runs = []

    def run(line: str, cwd: Path) -> str:
        t = time.perf_counter()
        proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True)
        runs.append({"line": line, "rc": proc.returncode, "seconds": round(time.perf_counter() - t, 1)})
        print(f"$ {line}\n{proc.stdout}{proc.stderr[-1500:]}[exit {proc.returncode}, {runs[-1]['seconds']} s]",
              flush=True)
        if proc.returncode:
            raise SystemExit(f"README line failed: {line}")
        return proc.stdout

    if args.fresh:
        run(lines[0], ROOT)  # the install, in the source folder
    python = bindir / "python"
    subprocess.run([str(python), "-c", HELPER, str(ROOT), str(cache / "snapshots" / COMMIT), str(work)], check=True,
                   env={**env, "HF_HUB_OFFLINE": "1"})
    out = ""
    for line in lines[1:]:
        if args.minutes is not None:
            line = re.sub(r"--max-minutes \S+", f"--max-minutes {args.minutes:g}", line)
        out = run(line, work)
    if not out.strip():
        raise SystemExit("the last line printed no transcript")
    (work / "readme_deploy.json").write_text(json.dumps(runs, indent=1) + "\n")
    print(f"every line passed ({len(runs)} commands); {shlex.quote(str(work / 'readme_deploy.json'))}")


if __name__ == "__main__":
    main()
