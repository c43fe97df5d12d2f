#!/usr/bin/env bash
# Re-judge the survivors of a scripts/mutation.sh run with the tests of the current tree (tests
# written against survivors after the run): each surviving mutant is applied (`mutmut apply`) to
# the run's copy of the mutated file, and the module's test subset from MODULES in mutation.sh,
# taken from this tree, runs against it. Prints one line per survivor: killed / survived.
#
#   scripts/mutation_recheck.sh manifest                  # after scripts/mutation.sh manifest
#   scripts/mutation_recheck.sh decoding make_decoder     # only survivors whose name contains a word
#
# Environment: as mutation.sh (PROJECT_VENV, MUTVENV, WORK); TESTS overrides the test subset.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROJECT_VENV=${PROJECT_VENV:-/work/main/.venv}
MUTVENV=${MUTVENV:-/tmp/i3d-mutvenv}
WORK=${WORK:-/tmp/i3d-mutation}
name=$1
shift
spec=$(grep -o "\"$name|[^\"]*\"" "$ROOT/scripts/mutation.sh" | tr -d '"')
IFS='|' read -r _ file _ tests <<< "$spec"
tests=${TESTS:-$tests}
dir=$WORK/$name
[[ -d $dir/mutants ]] || { echo "no mutation run in $dir" >&2; exit 2; }
rm -rf "$dir/tests" && cp -r "$ROOT/tests" "$dir/tests"  # the current tests
cp "$dir/$file" "$dir/$file.orig"
export I3D_EDGE_TEST_FIXTURE_CACHE=$WORK/fixtures
survivors=$(cd "$dir" && "$MUTVENV/bin/mutmut" results 2>/dev/null | awk -F': ' '$2 == "survived" {gsub(/^ +/, "", $1); print $1}')
# shellcheck disable=SC2086  # the tests are separate arguments
if ! (cd "$dir" && PYTHONPATH=$dir timeout 900 "$PROJECT_VENV/bin/python" -m pytest -q -x -n 0 -p no:cacheprovider \
    $tests > "$dir/recheck-clean.log" 2>&1); then
  echo "the tests fail on the run's unmutated $file (see $dir/recheck-clean.log): nothing to judge" >&2
  exit 1
fi
killed=0 left=0
for mutant in $survivors; do
  if (( $# )); then
    wanted=0
    for word in "$@"; do [[ $mutant == *"$word"* ]] && wanted=1; done
    (( wanted )) || continue
  fi
  cp "$dir/$file.orig" "$dir/$file"
  (cd "$dir" && "$MUTVENV/bin/mutmut" apply "$mutant" > /dev/null 2>&1)
  # shellcheck disable=SC2086  # the tests are separate arguments
  if (cd "$dir" && PYTHONPATH=$dir timeout 600 "$PROJECT_VENV/bin/python" -m pytest -q -x -n 0 -p no:cacheprovider \
      $tests > /dev/null 2>&1); then
    echo "survived $mutant"; left=$((left + 1))
  else
    echo "killed   $mutant"; killed=$((killed + 1))
  fi
done
cp "$dir/$file.orig" "$dir/$file"
echo "$name: $killed of $((killed + left)) survivors killed by the current tests, $left survive"
