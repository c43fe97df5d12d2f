#!/usr/bin/env bash
# One-shot accelerator run: synthesise a fresh training corpus with the recipe, then train the
# default model and the I3D study models (issue #8) side by side on one GPU, and pack the
# checkpoints. Written for a bare, offline 16-core GPU machine that has PyTorch but neither the
# TTS programs nor soundfile/soxr: those travel in .device/ (built by recipes/pack_device.sh).
#
#   bash recipes/gpu_train.sh OUT_DIR        # env: HOURS, MINUTES, DEADLINE, DEVICE, JOBS, STUDY, INIT
#
# Every training command here is the ordinary `i3d-edge train`; on a CPU machine the same
# commands (without --device cuda) reproduce the run, only slower.
set -euo pipefail
OUT=${1:?usage: gpu_train.sh OUT_DIR}
HOURS=${HOURS:-14}        # training hours to synthesise
MINUTES=${MINUTES:-6}     # wall-clock training budget of every model (cut to fit DEADLINE)
DEADLINE=${DEADLINE:-0}   # seconds since start by which everything must be packed (0: none)
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-$(nproc)}
STUDY=${STUDY:-1}         # also train the issue #8 study models
WORK=${WORK:-/tmp/i3d}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
t0=$(date +%s)
stamp() { echo "[gpu_train +$(( $(date +%s) - t0 ))s] $*"; }

LOGS="$WORK/logs"
mkdir -p "$WORK" "$OUT" "$LOGS"
if ! python3 -c "import soundfile, soxr" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$REPO"/.device/whl/*.whl
  export PYTHONPATH="$WORK/site"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PAY="$WORK/payload"
if [ -f "$REPO/.device/payload.tar.xz" ]; then  # carried espeak-ng and flite, each run with its own libraries
  mkdir -p "$PAY" "$WORK/bin"
  tar -xJf "$REPO/.device/payload.tar.xz" -C "$PAY"
  for b in espeak-ng flite; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$PAY/tts/lib" "$PAY/tts/bin/$b" \
      > "$WORK/bin/$b"
    chmod +x "$WORK/bin/$b"
  done
  export PATH="$WORK/bin:$PATH" ESPEAK_DATA_PATH="$PAY/tts" I3D_SHARED="$PAY/shared"
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
stamp "synthesising $HOURS h"
python3 "$REPO/recipes/make_corpus.py" "$WORK/corpus" --hours "$HOURS" --jobs "$JOBS" --no-install \
  --skip-sources piper,festival --text-pools "$REPO/.device/text_pools.json.gz" --splits train,dev \
  --dev-minutes 10 2> "$LOGS/corpus.log" || { tail -20 "$LOGS/corpus.log"; exit 1; }
tail -3 "$LOGS/corpus.log"
stamp "features"
python3 - "$WORK" "$JOBS" <<'EOF'
import sys
from pathlib import Path
from i3d_edge.config import FeatureConfig
from i3d_edge.models.data import FeatureSet
work, jobs = Path(sys.argv[1]), int(sys.argv[2])
for split in ("train", "dev"):
    fs = FeatureSet.build([work / "corpus" / split], FeatureConfig(), work / "cache", jobs=jobs)
    print(split, len(fs), "utts", round(float(fs.lengths.sum()) / 360000, 2), "h")
EOF

run() {  # run NAME ARGS...: one background training run sharing the feature cache
  local name=$1; shift
  mkdir -p "$WORK/runs/$name"
  ln -sfn "$WORK/cache" "$WORK/runs/$name/cache"
  python3 -m i3d_edge train -o "$WORK/runs/$name" --train "$WORK/corpus/train" --dev "$WORK/corpus/dev" \
    --device "$DEVICE" --threads 2 --max-minutes "$MINUTES" --fit-to-time "$@" > "$LOGS/$name.log" 2>&1 &
}
if [ "$DEADLINE" -gt 0 ]; then  # leave ~45 s for start-up, final evaluation and packing
  MINUTES=$(python3 -c "print(round(max(0.5, min($MINUTES, ($DEADLINE - $(( $(date +%s) - t0 )) - 45) / 60)), 2))")
fi
stamp "training for $MINUTES min"
if [ -n "${INIT:-}" ]; then  # continue from a checkpoint: gates already trained, a fresh, lower LR cycle
  run default --init "$INIT" --lambda 2.0 --gate-target 0.5 --lr 8e-4 --warmup-steps 100 --gate-warmup-steps 0 \
    --max-steps 4500 --batch-frames 24000
else
  run default --layers 12 --d-model 192 --heads 4 --d-ff 768 --gates global --lambda 2.0 --gate-target 0.5 \
    --warmup-steps 300 --gate-warmup-steps 1500 --max-steps 4500 --batch-frames 24000
fi
if [ "$STUDY" = 1 ]; then
  S="--d-model 144 --heads 4 --d-ff 576 --warmup-steps 300 --max-steps 4500 --batch-frames 24000"
  for n in 3 4 6; do run "vanilla$n" --layers $n --gates none $S; done
  for g in global local; do
    for t in 0.5 0.7; do run "$g-t$t" --layers 6 --gates $g --lambda 2.0 --gate-target $t --gate-warmup-steps 1500 $S; done
  done
fi
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
stamp "training done (failures: $fail)"
for f in "$LOGS"/*.log; do echo "== $f"; grep -E '"dev"|schedule|Error|error' "$f" | tail -3 || true; done
python3 - "$WORK/runs" "$OUT" <<'EOF'
import sys, tarfile
from pathlib import Path
from i3d_edge.models.checkpoint import load_checkpoint, save_checkpoint
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
study = tarfile.open(out / "study.tar", "w")
for run in sorted(p for p in runs.iterdir() if (p / "last.pt").exists()):
    ckpt = load_checkpoint(run / "last.pt")
    ckpt.train_state.pop("optimizer", None)
    if run.name == "default":
        save_checkpoint(out / "default.pt", ckpt)
    else:  # float16 weights keep the study pack small
        ckpt.state_dict = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
        save_checkpoint(run / "small.pt", ckpt)
        study.add(run / "small.pt", arcname=f"{run.name}.pt")
    study.add(run / "train.log", arcname=f"{run.name}.train.jsonl")
study.close()
EOF
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
split -b 15M -d "$OUT/default.pt" "$OUT/default.pt.part" && rm "$OUT/default.pt"
if [ "$STUDY" = 1 ]; then split -b 15M -d "$OUT/study.tar" "$OUT/study.tar.part"; fi
rm "$OUT/study.tar"
ls -la "$OUT"
stamp "done"
exit $fail
