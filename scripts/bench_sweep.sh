#!/usr/bin/env bash
# Sweep throughput, 1 vs 2 worker processes: estimated points per second and simulated points per
# minute on the example sweep (examples/sweep-405b.json: Llama-3.1-405B on 4k-16k H100s, every plan
# of the grid estimated, the best 6 per GPU count simulated under three straggler scenarios).
# Medians of RUNS runs each (default 3), every run from an empty results file.
#   scripts/bench_sweep.sh [SPEC]        (after scripts/setup.sh; RUNS=5 scripts/bench_sweep.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
binary=${CLUSTERSIM:-build/tools/clustersim}
spec=${1:-examples/sweep-405b.json}
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "sweep benchmark: $spec, $runs run(s) per worker count, $(nproc) cores"
for jobs in 1 2; do
  : > "$work/estimate.$jobs"
  : > "$work/simulate.$jobs"
  for ((run = 1; run <= runs; run++)); do
    rm -f "$work/rows.jsonl"
    "$binary" sweep "$spec" -o "$work/rows.jsonl" -j "$jobs" 2> "$work/log"
    # "sweep: <tier> tier: N points run in S s on W worker(s): R points/s, M points/min"
    awk '/^sweep: estimate\+serve tier:/ {print $(NF-3)}' "$work/log" >> "$work/estimate.$jobs"
    awk '/^sweep: simulate tier:/ {print $(NF-1)}' "$work/log" >> "$work/simulate.$jobs"
    rows=$(wc -l < "$work/rows.jsonl")
  done
  printf '%d worker(s): %8.1f estimated points/s  %6.1f simulated points/min  (medians of %d; %d rows a run)\n' \
    "$jobs" "$(median < "$work/estimate.$jobs")" "$(median < "$work/simulate.$jobs")" "$runs" "$rows"
done
