#!/usr/bin/env bash
# Times `clustersim simulate` (one training iteration replayed on SimGrid) and prints medians of
# RUNS runs of wall time and peak RSS (the whole command: loading, estimate, replay children):
#   - Llama-3.1-405B, TP8 PP16 (2 interleaved chunks) DP128, GBS 2048, seq 8192, h100-ndr, 16,384 GPUs
#   - the same with 1 % of the nodes straggling at 1.2x (seeded; baseline + scenario replays)
#   - the same plan at 65,536 GPUs (DP512, GBS 8192)
#   - the 16,384-GPU plan on h800-roce, whose RoCE fabric hashes flows onto uplinks (ECMP)
#   scripts/bench_simulate.sh [BUILD_DIR] [RUNS]      defaults: build 3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
runs=${2:-3}
binary="$build_dir/tools/clustersim"
require_clustersim bench_simulate "$binary"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

plan=llama-3.1-405b-16k-interleaved
cat > "$work/stragglers.json" <<'JSON'
{"seed": 2024, "stragglers": [{"fraction_of_nodes": 0.01, "slowdown": 1.2}]}
JSON
sed 's/"global_batch_size": 2048/"global_batch_size": 8192/' configs/plans/$plan.json > "$work/plan-64k.json"


bench() {  # label, then simulate arguments (CLUSTER: h100-ndr unless set)
  local label=$1 walls=() rss=() out
  shift
  for ((i = 0; i < runs; ++i)); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$binary" simulate --model llama-3.1-405b --cluster "${CLUSTER:-h100-ndr}" \
      "$@" --format json > "$work/out.json" 2> "$work/err"
    read -r wall kb < "$work/time"
    walls+=("$wall")
    rss+=("$((kb / 1024))")
  done
  printf '%-46s wall %6.2f s  peak RSS %5d MB\n' "$label" "$(printf '%s\n' "${walls[@]}" | median)" \
    "$(printf '%s\n' "${rss[@]}" | median)"
  python3 - "$work/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["simulation"]
print(f'    simulated step {j["step_time_s"]:.4f} s (estimate {j["estimate_step_time_s"]:.4f} s), '
      f'{s["replica_classes"]} replica classes, {s["activities"]} activities, {s["flows"]} flows')
if "scenario" in j:
    sc = j["scenario"]
    print(f'    baseline {sc["baseline_step_time_s"]:.4f} s, slowdown {sc["slowdown"]:.4f}, waste {100 * sc["waste"]:.2f} %, '
          f'{sc["slowed_ranks"]} slowed ranks')
    for c in j["critical_path"]["causes"]:
        if c["cause"] == "straggler":
            print(f'    critical path: {c["seconds"]:.4f} s waiting on {c["detail"]}')
    print(f'    slow nodes on the critical path: {j["critical_path"]["slow_nodes"]}')
ecmp = [c for c in j["critical_path"]["causes"] if c.get("detail", "").startswith("ECMP")]
for c in ecmp:
    print(f'    critical path: {c["seconds"]:.4f} s of {c["detail"]}')
PY
}

echo "clustersim simulate on h100-ndr, medians of $runs runs"
bench "16,384 GPUs: 405B TP8 PP16x2 DP128" --gpus 16384 --plan $plan
bench "16,384 GPUs: same, 1 % of nodes at 1.2x" --gpus 16384 --plan $plan --scenario "$work/stragglers.json"
bench "65,536 GPUs: 405B TP8 PP16x2 DP512" --gpus 65536 --plan "$work/plan-64k.json"
CLUSTER=h800-roce bench "16,384 GPUs on h800-roce (ECMP): same plan" --gpus 16384 --plan $plan
