#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job on the built-in default:
# Llama-3.1-405B on 16,384 H100s with the Llama 3 paper's TP8 x PP16 x DP128 plan.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$(scripts/setup.sh)
exec "$build_dir/tools/clustersim" explain --model llama-3.1-405b --cluster h100-ndr \
  --gpus 16384 --plan llama-3.1-405b-16k "$@"
