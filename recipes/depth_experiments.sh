#!/usr/bin/env bash
# Gate-objective experiments for input-dependent depth (issue 19), on CPU.
#
#   bash recipes/depth_experiments.sh OUT [NAME ...]
#
# Every run starts from the shipped checkpoint (INIT, default recipes/default_model/ckpt.pt) with
# its saturated gate predictor re-initialised (every gate open) and fine-tunes for MINUTES
# (default 20; --fit-to-time rescales MAX_STEPS, default 500, and the warm-ups to it) on CORPUS/train, two runs at a time with one torch thread each. The features
# are extracted once into OUT/cache and shared. NAMEs pick runs from the table below (default:
# all). Each run's log is OUT/NAME/train.log; its checkpoint OUT/NAME/last.pt.
set -euo pipefail
out=${1:?usage: depth_experiments.sh OUT [NAME ...]}
shift
CORPUS=${CORPUS:-/work/data/corpus}
INIT=${INIT:-recipes/default_model/ckpt.pt}
MINUTES=${MINUTES:-20}
PY=${PY:-python}
PARALLEL=${PARALLEL:-2}

# name | extra arguments of i3d-edge train
declare -A RUNS=(
  [expected_l05]="--gate-objective expected --lambda 0.5"
  [expected_l05_anneal]="--gate-objective expected --lambda 0.5 --temperature 2 --temperature-end 0.3"
  [expected_l1]="--gate-objective expected --lambda 1.0"
  [utterance_b05]="--gate-objective utterance --gate-target 0.5 --lambda 2.0"
  [target_05]="--gate-objective target --gate-target 0.5 --lambda 2.0"
  [gateonly_expected_l05]="--train-only gates --gate-objective expected --lambda 0.5 --lr 3e-3"
  [target_05_div1]="--gate-objective target --gate-target 0.5 --lambda 2.0 --gate-diversity 1.0"
  [expected_l05_div1]="--gate-objective expected --lambda 0.5 --gate-diversity 1.0"
  [target_05_div3]="--gate-objective target --gate-target 0.5 --lambda 2.0 --gate-diversity 3.0"
  [warm_target_05_div1]="--gate-warmup-steps 150 --gate-objective target --gate-target 0.5 --lambda 2.0 --gate-diversity 1.0"
  [expected_l1_div1]="--gate-objective expected --lambda 1.0 --gate-diversity 1.0"
  [gateonly_target_05_div1]="--train-only gates --gate-objective target --gate-target 0.5 --lambda 2.0 --gate-diversity 1.0 --lr 3e-3"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(target_05_div1 expected_l05_div1 target_05_div3 gateonly_target_05_div1 expected_l05 utterance_b05 target_05 expected_l05_anneal gateonly_expected_l05 expected_l1)

mkdir -p "$out/cache"
# one feature extraction for every run (same corpus, same feature config from INIT)
$PY - "$CORPUS" "$INIT" "$out/cache" <<'EOF'
import sys
from pathlib import Path
from i3d_edge.config import FeatureConfig
from i3d_edge.models.checkpoint import load_checkpoint
from i3d_edge.models.data import FeatureSet
corpus, init, cache = map(Path, sys.argv[1:])
fcfg = FeatureConfig(n_mels=load_checkpoint(init).model_config.n_mels)  # the cache holds raw log-mel, as train() keys it
for split in ("train", "dev"):
    print(split, len(FeatureSet.build([corpus / split], fcfg, cache, jobs=2)), "utterances", flush=True)
EOF

run_one() {
  local name=$1
  mkdir -p "$out/$name"
  ln -sfn "$(cd "$out/cache" && pwd)" "$out/$name/cache"
  # shellcheck disable=SC2086
  $PY -m i3d_edge train -o "$out/$name" --train "$CORPUS/train" --dev "$CORPUS/dev" --init "$INIT" \
    --reinit-gates --gate-warmup-steps 0 --lr "${LR:-3e-4}" --warmup-steps 20 --max-steps "${MAX_STEPS:-500}" \
    --batch-frames "${BATCH_FRAMES:-8000}" --max-minutes "$MINUTES" --fit-to-time --threads 1 --jobs 1 \
    --seed 1 --no-specaugment ${RUNS[$name]} > "$out/$name/stdout.log" 2>&1
}

pids=()
for name in "${names[@]}"; do
  [ -n "${RUNS[$name]+x}" ] || { echo "unknown run $name" >&2; exit 2; }
  run_one "$name" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$PARALLEL" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
wait
