#!/usr/bin/env bash
# Times `clustersim whatif` on the published AR straggler trace (117,216 ops) and prints the
# median wall time of several runs. Acceptance: <= 3 s on a 2-core machine, Release build.
#   scripts/bench_whatif.sh [BUILD_DIR] [RUNS]      defaults: build 7
# TRACES_DIR overrides where the reference traces are (default ../shared/reference/straggler-traces).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
runs=${2:-7}
traces=${TRACES_DIR:-../shared/reference/straggler-traces}
binary="$build_dir/tools/clustersim"
require_executable bench_whatif "$binary" "; build first (scripts/setup.sh)"
[[ -f "$traces/trace-AR.csv.gz" ]] || { echo "bench_whatif: $traces/trace-AR.csv.gz not found" >&2; exit 2; }
args=(whatif --trace "$traces/trace-AR.csv.gz" --meta "$traces/meta-AR.yaml" --format json)
times=()
for ((i = 0; i < runs; ++i)); do
  start=$EPOCHREALTIME
  "$binary" "${args[@]}" > /dev/null
  end=$EPOCHREALTIME
  times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.6f", b - a}')")
done
median=$(printf '%s\n' "${times[@]}" | median)
printf 'whatif AR (117,216 ops): %d runs, median %.3f s (min %.3f s, max %.3f s)\n' "$runs" \
  "$median" "$(printf '%s\n' "${times[@]}" | sort -g | head -1)" \
  "$(printf '%s\n' "${times[@]}" | sort -g | tail -1)"
