#!/usr/bin/env bash
# Start-up cost of clustersim: wall time and max RSS of `clustersim --version` and of `estimate`
# of the default plan (Llama-3.1-405B on 16,384 H100s, the Llama 3 plan), medians of RUNS runs
# (/usr/bin/time -f '%e %M' for max RSS; wall time in microseconds around the same call, as %e
# counts in 10 ms steps). Target: <= 30 ms and <= 30 MB each; exit 1 above it.
#   scripts/bench_startup.sh [BUILD_DIR] [RUNS]      defaults: build 5
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
runs=${2:-5}
binary="$build_dir/tools/clustersim"
require_clustersim bench_startup "$binary"
require_time bench_startup
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
bench() {  # label, then clustersim arguments
  local label=$1 walls=() rss=() wall kb ms mb start end
  shift
  for ((i = 0; i < runs; ++i)); do
    # %e has 10 ms resolution; the wall time is also taken around the call in microseconds.
    start=$EPOCHREALTIME
    /usr/bin/time -f '%e %M' -o "$work/time" "$binary" "$@" > /dev/null 2> "$work/err"
    end=$EPOCHREALTIME
    read -r wall kb < "$work/time"
    walls+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.6f", b - a}')")
    rss+=("$kb")
  done
  ms=$(printf '%s\n' "${walls[@]}" | median | awk '{printf "%.1f", $1 * 1000}')
  mb=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.1f", $1 / 1024}')
  printf '%-34s wall %5.1f ms  max RSS %6.1f MB  (median of %d; /usr/bin/time %%e of the last: %s s)\n' \
    "$label" "$ms" "$mb" "$runs" "$wall"
  awk -v ms="$ms" -v mb="$mb" 'BEGIN { exit !(ms <= 30 && mb <= 30) }' || {
    echo "  over the 30 ms / 30 MB target" >&2
    status=1
  }
}

bench "clustersim --version" --version
bench "estimate 405B on 16,384 H100s" estimate --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \
  --plan llama-3.1-405b-16k
exit $status
