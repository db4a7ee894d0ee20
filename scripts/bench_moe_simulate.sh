#!/usr/bin/env bash
# Times `clustersim simulate` of DeepSeek-V3 pre-training on 2,048 H800s (PP 16, EP 64, DP 128,
# the plan configs/plans/deepseek-v3-2048-h800.json) and prints the median wall time and peak
# RSS of RUNS runs (the whole command: loading, estimate, replay children). Target (issue 17):
# <= 10 s and <= 1 GiB; exit 1 above it.
#   scripts/bench_moe_simulate.sh [BUILD_DIR] [RUNS]      defaults: build 3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
runs=${2:-3}
binary="$build_dir/tools/clustersim"
require_clustersim bench_moe_simulate "$binary"
require_time bench_moe_simulate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

walls=() rss=()
for ((i = 0; i < runs; ++i)); do
  /usr/bin/time -f '%e %M' -o "$work/time" "$binary" simulate --model deepseek-v3 --cluster h800-roce \
    --gpus 2048 --plan deepseek-v3-2048-h800 --format json > "$work/out.json" 2> "$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  read -r wall kb < "$work/time"
  walls+=("$wall")
  rss+=("$kb")
done
s=$(printf '%s\n' "${walls[@]}" | median)
mb=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.1f", $1 / 1024}')
step=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step_time_s'])" "$work/out.json" 2>/dev/null || echo "?")
printf 'DeepSeek-V3, 2,048 H800, PP16 EP64   wall %6.2f s  max RSS %7.1f MB  (median of %d)  simulated step %s s\n' \
  "$s" "$mb" "$runs" "$step"
awk -v s="$s" -v mb="$mb" 'BEGIN { exit !(s <= 10 && mb <= 1024) }' || { echo "  over the 10 s / 1 GiB target" >&2; exit 1; }
