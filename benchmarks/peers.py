"""i3d-edge side by side with pocketsphinx on the same real speech, scored the same way.

    python benchmarks/peers.py [--sets an4_test,ljspeech_dev,...] [--model DIR] [--peers-only]
                               [--rerun-peers] [--out benchmarks/PEERS.md]

Systems: pocketsphinx (the ``pocketsphinx`` package, its default en-us acoustic model, LM and
dictionary, 16 kHz 16-bit input) and i3d-edge (the embedded default model unless ``--model``;
greedy and LM decoding, fp32 and int8, the default threshold). Both are scored by
:func:`i3d_edge.scoring.score` (one normalisation). Each row has the modules executed (i3d-edge)
and the real-time factor on this machine (processing time / audio time, one process, 2 threads
for onnxruntime; pocketsphinx is single-threaded).

pocketsphinx is slow (about 1 s per second of audio here), so its transcripts are kept in
``benchmarks/peers/pocketsphinx.json`` (per set: id -> hypothesis, with the audio and processing
seconds) and reused unless ``--rerun-peers``; a set whose ids changed is rerun.

Sets (a missing folder is skipped with a line saying so):
  an4_test         ../shared/data/an4-test: 130 utterances, 10 native US speakers (evaluation only)
  ljspeech_dev     ../shared/data/ljspeech-dev: 32 studio read-speech clips (evaluation only)
  speechocean_dev  REAL/dev_speechocean762-train: the speechocean762 speakers held out of training
  an4_dev          REAL/dev_an4-train: the AN4 training speakers held out of training
  fsdd_test        SYNTH/test_fsdd: FSDD speaker theo, 500 digits (held out)
  synth_voices     SYNTH/test_voices: two held-out synthetic voices
where REAL is ``--real-corpus`` (``recipes/make_real_corpus.py``) and SYNTH is ``--synth-corpus``
(``recipes/make_corpus.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "peers" / "pocketsphinx.json"


def set_paths(real: Path, synth: Path) -> dict[str, Path]:
    return {"an4_test": SHARED / "an4-test", "ljspeech_dev": SHARED / "ljspeech-dev",
            "speechocean_dev": real / "dev_speechocean762-train", "an4_dev": real / "dev_an4-train",
            "fsdd_test": synth / "test_fsdd", "synth_voices": synth / "test_voices"}


def pocketsphinx_set(items: list[tuple[str, Path, str]]) -> dict:
    """Transcribe with pocketsphinx's default model: {"hyps": {id: text}, "audio_s", "proc_s"}."""
    from pocketsphinx import Decoder

    from i3d_edge.audio import load_audio

    decoder = Decoder(loglevel="FATAL")
    hyps, audio_s, proc_s = {}, 0.0, 0.0
    for utt, path, _ in items:
        x = load_audio(path, target_rate=16000)
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        t0 = time.perf_counter()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        proc_s += time.perf_counter() - t0
        audio_s += len(x) / 16000
        hyp = decoder.hyp()
        hyps[utt] = hyp.hypstr if hyp is not None else ""
    return {"hyps": hyps, "audio_s": audio_s, "proc_s": proc_s}


def pocketsphinx_rows(sets: dict[str, list[tuple[str, Path, str]]], rerun: bool) -> list[dict]:
    from i3d_edge.scoring import score

    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    import pocketsphinx

    rows = []
    for name, items in sets.items():
        entry = cache.get(name)
        if rerun or entry is None or set(entry["hyps"]) != {u for u, _, _ in items}:
            print(f"pocketsphinx: {name} ({len(items)} utterances) ...", flush=True)
            entry = pocketsphinx_set(items)
            entry["version"] = pocketsphinx.__version__ if hasattr(pocketsphinx, "__version__") else "5"
            cache[name] = entry
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            CACHE.write_text(json.dumps(cache, indent=0, sort_keys=True) + "\n")
        s = score([t for _, _, t in items], [entry["hyps"][u] for u, _, _ in items])
        rows.append({"set": name, "system": "pocketsphinx 5 (en-us + its LM)", "wer": s.wer, "cer": s.cer,
                     "acc": s.sentence_accuracy, "utterances": len(items), "modules": None,
                     "rtf": entry["proc_s"] / max(entry["audio_s"], 1e-9)})
    return rows


def i3d_rows(model: Path | None, sets: dict[str, Path], threads: int, configs: list[str], label: str) -> list[dict]:
    from i3d_edge.apps.evaluation import evaluate_corpus
    from i3d_edge.runtime import Runtime

    rows = []
    for config in configs:
        precision, _, decoder = config.partition(":")
        rt = Runtime(model, precision=precision, threads=threads, decoder=decoder) if model else \
            Runtime(precision=precision, threads=threads, decoder=decoder)
        for name, path in sets.items():
            r = evaluate_corpus(rt, path)
            rows.append({"set": name, "system": f"{label} {precision} {decoder}", "wer": r.wer, "cer": r.cer,
                         "acc": r.sentence_accuracy, "utterances": r.utterances,
                         "modules": f"{r.modules_executed:.1f}/{r.modules_total}", "rtf": r.rtf})
            print(f"{name:16s} {rows[-1]['system']:22s} WER {100 * r.wer:5.1f} CER {100 * r.cer:5.1f} "
                  f"modules {rows[-1]['modules']} RTF {r.rtf:.4f}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| set | system | utts | WER % | CER % | exact % | modules executed | RTF |",
           "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["set"], r["system"])):
        out.append(f"| {r['set']} | {r['system']} | {r['utterances']} | {100 * r['wer']:.1f} | {100 * r['cer']:.1f} "
                   f"| {100 * r['acc']:.1f} | {r['modules'] or '-'} | {r['rtf']:.3f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="an4_test,ljspeech_dev,speechocean_dev,an4_dev,fsdd_test,synth_voices")
    ap.add_argument("--model", type=Path, default=None, help="bundle directory (default: the embedded model)")
    ap.add_argument("--real-corpus", type=Path, default=Path("/work/data/real"))
    ap.add_argument("--synth-corpus", type=Path, default=Path("/work/data/corpus"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default="fp32:lm,fp32:greedy,int8:lm,int8:greedy",
                    help="i3d-edge precision:decoder pairs to score")
    ap.add_argument("--label", default="i3d-edge", help="the i3d-edge rows' system name (e.g. its version)")
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--rerun-peers", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "PEERS.md")
    args = ap.parse_args(argv)

    from i3d_edge.corpus import read_corpus

    paths = set_paths(args.real_corpus, args.synth_corpus)
    chosen = {}
    for name in args.sets.split(","):
        path = paths[name]
        if not (path / "transcripts.tsv").is_file():
            print(f"skip {name}: {path} has no transcripts.tsv")
            continue
        chosen[name] = path
    rows = [] if args.no_peers else pocketsphinx_rows({n: read_corpus(p) for n, p in chosen.items()},
                                                      args.rerun_peers)
    if not args.peers_only:
        rows += i3d_rows(args.model, chosen, args.threads, args.configs.split(","), args.label)
    text = table(rows)
    print(text)
    command = "python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(f"# i3d-edge and pocketsphinx on the same real speech\n\nMeasured by `{command}` "
                        f"({time.strftime('%Y-%m-%d')}, the shared 2-core VM; RTF under whatever else ran).\n\n"
                        f"{text}\n", encoding="utf-8")
    (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
