#!/usr/bin/env bash
# Refits the shipped profiles configs/profiles/<gpu>.json from the published measurements
# transcribed in configs/measurements/<gpu>/, with roofline defaults (flagged) from the
# matching cluster preset. Usage: scripts/make_profiles.sh [build-dir]
set -euo pipefail
export LC_ALL=C  # the glob order is the record order
cd "$(dirname "$0")/.."
build_dir=${1:-$(scripts/setup.sh)}
clustersim="$build_dir/tools/clustersim"
# gpu:cluster preset ("-" for none: no roofline defaults)
for entry in a100:a100-hdr h100:h100-ndr h200:h200-ndr h800:h800-roce b200:-; do
  gpu=${entry%%:*}
  cluster=${entry#*:}
  args=()
  [[ $cluster != - ]] && args=(--cluster "$cluster")
  "$clustersim" calibrate fit configs/measurements/"$gpu"/*.csv "${args[@]}" --name "$gpu" \
    -o configs/profiles/"$gpu".json
done
