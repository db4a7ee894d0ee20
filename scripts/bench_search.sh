#!/usr/bin/env bash
# Benchmark of `clustersim search` (issue target: Llama-3.1-405B on 16,384 H100s, global batch
# 2048, sequence 8192, in <= 10 s; goal >= 10,000 candidates/s on one core). Prints the median
# of N runs (default 5). Usage: scripts/bench_search.sh [build-dir] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
runs=${2:-5}
rates=()
estimated=()
walls=()
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  line=$("$build_dir/tools/clustersim" search --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \
    --global-batch-size 2048 --seq-length 8192 --top 1 2>&1 >/dev/null | grep 'candidate plans')
  end=$(date +%s.%N)
  walls+=("$(echo "$end - $start" | bc -l)")
  rates+=("$(echo "$line" | sed -E 's/.*\(([0-9]+) per second;.*/\1/')")
  estimated+=("$(echo "$line" | sed -E 's/.*estimated, ([0-9]+) per second;.*/\1/')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "search llama-3.1-405b on 16384 x h100-ndr: $line"
echo "median of $runs runs: wall $(median "${walls[@]}") s, $(median "${rates[@]}") candidates/s enumerated, $(median "${estimated[@]}") plans/s estimated"
