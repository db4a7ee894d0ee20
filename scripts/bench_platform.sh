#!/usr/bin/env bash
# Times the simulated network platform: builds h100-ndr at 16,384 and 65,536 GPUs, runs 16 (and,
# at 64k, 64) concurrent 1024-rank ring all-reduces as aggregated flows, and a TP8 x PP16 x DP
# 1F1B skeleton (32 micro-batches, pipeline p2p on rail 0 + DP all-reduce on every rail, or on
# rail 0 only as the representative of identical rails). Prints
# medians of RUNS runs (one process each: SimGrid allows one engine per process).
#   scripts/bench_platform.sh [BUILD_DIR] [RUNS]      defaults: build 3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
runs=${2:-3}
binary="$build_dir/sim/bench_platform"
cluster=configs/clusters/h100-ndr.json
require_executable bench_platform "$binary" "; build the bench_platform target first"
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

bench() {  # label, then bench_platform arguments after the cluster
  local label=$1 out builds=() sims=() rss=() simulated flows
  shift
  for ((i = 0; i < runs; ++i)); do
    out=$("$binary" "$cluster" "$@")
    builds+=("$(field build_s <<< "$out")")
    sims+=("$(field simulate_s <<< "$out")")
    rss+=("$(field peak_rss_mb <<< "$out")")
    simulated=$(field simulated_s <<< "$out")
    flows=$(field flows <<< "$out")
  done
  printf '%-34s build %6.3f s  simulate %6.3f s  peak RSS %5.0f MB  (simulated %.6f s, %s flows)\n' "$label" \
    "$(printf '%s\n' "${builds[@]}" | median)" "$(printf '%s\n' "${sims[@]}" | median)" \
    "$(printf '%s\n' "${rss[@]}" | median)" "$simulated" "$flows"
}

echo "h100-ndr, medians of $runs runs"
bench "16,384 GPUs: build only" 16384 build
bench "16,384 GPUs: 16 x 1024-rank AR" 16384 rings 16 1024
bench "16,384 GPUs: TP8 PP16 DP128 1F1B" 16384 skeleton 32 8
bench "16,384 GPUs: same, DP AR on rail 0" 16384 skeleton 32 1
bench "65,536 GPUs: build only" 65536 build
bench "65,536 GPUs: 16 x 1024-rank AR" 65536 rings 16 1024
bench "65,536 GPUs: 64 x 1024-rank AR" 65536 rings 64 1024
bench "65,536 GPUs: TP8 PP16 DP512, rail 0" 65536 skeleton 32 1
# All 8 rails' DP rings at 64k put 65,536 host-to-host comms in flight at once; SimGrid 3.32
# removes each finished one from a list in O(n): ~41 s. Set FULL=1 to run it.
if [[ ${FULL:-0} == 1 ]]; then bench "65,536 GPUs: TP8 PP16 DP512 1F1B" 65536 skeleton 32 8; fi
