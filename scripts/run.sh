#!/usr/bin/env bash
# Sets everything up, builds only the clustersim binary (no tests, no CUDA kernels), and runs the
# headline: one training iteration of Llama-3.1-405B on 16,384 H100s with the Llama 3 paper's
# TP8 x PP16 x DP128 plan, replayed on the simulated cluster (`simulate`): step time, MFU,
# tokens/s, where the time goes, the critical path's top causes and whether it fits in memory.
# Extra arguments go to `clustersim simulate` (e.g. --format json, --scenario FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$(scripts/setup.sh clustersim)
exec "$build_dir/tools/clustersim" simulate --model llama-3.1-405b --cluster h100-ndr \
  --gpus 16384 --plan llama-3.1-405b-16k "$@"
