#!/usr/bin/env bash
# Mutation testing (mutmut 3.8.1) of the modules that carry the product's behaviour. Slow: not
# part of CI. Each module is mutated in its own copy of the working tree and judged by its own
# fast test subset only (mutmut then runs, per mutant, just the tests that reach the mutated
# function). The report is benchmarks/MUTATION.md (written by hand from the results below).
#
#   scripts/mutation.sh                 # every module of MODULES
#   scripts/mutation.sh gating ctc      # some of them
#
# Environment: PROJECT_VENV (torch, onnxruntime, pytest, flashlight-text; default /work/main/.venv),
# MUTVENV (an overlay venv holding mutmut, created if missing), WORK (scratch, default
# /tmp/i3d-mutation), NICE (default 15), MAX_CHILDREN (default 1: the machine has 2 shared cores).
# Results: $WORK/<module>/results.txt (mutmut's verdict per mutant) and $WORK/summary.tsv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROJECT_VENV=${PROJECT_VENV:-/work/main/.venv}
MUTVENV=${MUTVENV:-/tmp/i3d-mutvenv}
WORK=${WORK:-/tmp/i3d-mutation}
NICE=${NICE:-15}
MAX_CHILDREN=${MAX_CHILDREN:-1}

# name | file to mutate | mutant name patterns | tests (pytest arguments, space-separated)
MODULES=(
  "errors|i3d_edge/errors.py|i3d_edge.errors.*|tests/test_errors.py"
  "gating|i3d_edge/gating.py|i3d_edge.gating.*|tests/test_reference_values.py"
  "ctc|i3d_edge/ctc.py|i3d_edge.ctc.*|tests/test_reference_values.py tests/test_features.py"
  "scoring|i3d_edge/scoring.py|i3d_edge.scoring.*|tests/test_reference_values.py tests/test_scoring.py"
  "features|i3d_edge/features.py|i3d_edge.features.*|tests/test_reference_values.py tests/test_features.py tests/runtime/test_runtime.py tests/models/test_hf_import_parity.py"
  "bench_verdicts|benchmarks/targets.py|benchmarks.targets.*|tests/apps/test_bench_verdicts.py"
  "results|i3d_edge/runtime/results.py|i3d_edge.runtime.results.*|tests/runtime/test_results.py tests/runtime/test_runtime.py tests/cli/test_transcribe.py tests/test_default_model.py"
  "evaluation|i3d_edge/apps/evaluation.py|i3d_edge.apps.evaluation.*|tests/test_default_model.py::test_eval_scores_a_hand_computed_corpus tests/apps/test_evaluation.py"
  "decoding|i3d_edge/runtime/decoding.py|i3d_edge.runtime.decoding.*|tests/runtime/test_lm_decoding.py tests/test_reference_values.py tests/test_default_model.py"
  "encoder|i3d_edge/runtime/encoder.py|i3d_edge.runtime.encoder.*|tests/runtime/test_runtime.py"
  "manifest|i3d_edge/manifest.py|i3d_edge.manifest.*|tests/test_manifest.py tests/runtime/test_lm_decoding.py tests/runtime/test_untrusted_bundles.py tests/runtime/test_damaged_bundles.py tests/runtime/test_declared_sizes.py::test_declared_sizes_are_one_line_errors_through_the_api tests/test_properties.py"
)

if [[ ! -x $MUTVENV/bin/mutmut ]]; then  # mutmut and its dependencies beside, not inside, the project venv
  "$PROJECT_VENV/bin/python" -m venv "$MUTVENV"
  site=$("$PROJECT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$site" > "$("$MUTVENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_project.pth"
  "$MUTVENV/bin/pip" install -q mutmut==3.8.1
fi

mkdir -p "$WORK"
export I3D_EDGE_TEST_FIXTURE_CACHE=$WORK/fixtures  # bundles exported once, not once per mutant
mkdir -p "$I3D_EDGE_TEST_FIXTURE_CACHE"
unset PYTHONPATH  # the mutated copy must be the one imported
wanted=("$@")
summary=$WORK/summary.tsv
[[ -f $summary ]] || printf 'module\tkilled\tsurvived\ttimeout\tno_tests\tother\ttotal\n' > "$summary"

for spec in "${MODULES[@]}"; do
  IFS='|' read -r name file patterns tests <<< "$spec"
  if (( ${#wanted[@]} )) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  dir=$WORK/$name
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --) | tar -xf - -C "$dir"
  {
    echo "[mutmut]"
    source=${file%%/*}  # i3d_edge, or benchmarks for the verdicts
    echo "source_paths = $source"
    echo "only_mutate = $file"
    echo "also_copy ="
    for d in samples recipes benchmarks i3d_edge; do [[ $d == "$source" ]] || printf '    %s\n' "$d"; done
    echo "pytest_add_cli_args ="
    printf '    %s\n' -p no:cacheprovider -n 0  # mutmut tracks tests in its own process: no xdist workers
    # forkserver: mutants are not forked from the process that ran the tests, so no lru_cache
    # (features._filterbank, features._window) hides a mutant behind an already computed value
    echo "process_isolation = forkserver"
    echo "timeout_multiplier = ${TIMEOUT_MULTIPLIER:-3.0}"
    echo "timeout_constant = ${TIMEOUT_CONSTANT:-10.0}"
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do printf '    %s\n' "$t"; done
  } > "$dir/setup.cfg"
  echo "== $name: $file against $tests"
  start=$(date +%s)
  # shellcheck disable=SC2086  # the patterns are separate arguments
  (cd "$dir" && timeout -k 10 "${MODULE_TIMEOUT:-3600}" nice -n "$NICE" "$MUTVENV/bin/mutmut" run --max-children "$MAX_CHILDREN" $patterns \
      > run.log 2>&1) || echo "   mutmut run exited $? (see $dir/run.log)"
  (cd "$dir" && "$MUTVENV/bin/mutmut" results --all true > results.txt 2>&1) || true
  python3 - "$dir/results.txt" "$name" "$patterns" "$(( $(date +%s) - start ))" >> "$summary" <<'EOF'
import fnmatch, sys
path, name, patterns, seconds = sys.argv[1:]
counts = {}
for line in open(path):
    mutant, sep, status = line.strip().rpartition(": ")
    if sep and any(fnmatch.fnmatch(mutant, p) for p in patterns.split()):
        counts[status] = counts.get(status, 0) + 1
known = ("killed", "survived", "timeout", "no tests")
other = sum(v for k, v in counts.items() if k not in known)
print("\t".join([name, *(str(counts.get(k, 0)) for k in known), str(other), str(sum(counts.values()))])
      + f"\t# {seconds} s")
EOF
  tail -1 "$summary"
done
