#!/usr/bin/env bash
# Serving acceptance checks through the real CLI (docs/serve.md):
#   1. one hour of Azure-2023-conversation-like traffic (~19.4k requests) on a 64-GPU
#      prefill/decode Llama-3-70B deployment: wall time of the whole command, target <= 10 s;
#   2. the DistServe simulator quick-start goodput (OPT-13B, TP2 prefill + TP1 decode on A100,
#      TTFT 0.2 s / TPOT 0.1 s at 90 %), reference 1.56 req/s per GPU, under both attainment
#      rules (joint: both targets per request; separate: DistServe's P90 TTFT and P90 TPOT);
#   3. attention/FFN disaggregation (Mixtral-8x7B decode against an expert pool): event-level vs
#      closed-form iteration time;
#   4. --network flows: one hour at 50 req/s of the same traffic on a 1,024-GPU prefill/decode
#      deployment (128 + 128 TP4 instances), every KV hand-off a set of SimGrid flows on the rail
#      fat-tree: wall time and peak memory, medians of 3, targets <= 60 s and <= 2 GiB.
#   scripts/bench_serve.sh [BUILD_DIR]      default: build (the one scripts/setup.sh makes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
build_dir=${1:-build}
binary="$build_dir/tools/clustersim"
require_clustersim bench_serve "$binary"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

start=$(date +%s.%N)
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
out=$("$binary" serve --model llama-3-70b --cluster a100-hdr --deployment configs/serve/llama-3-70b-pd-64.json \
  --workload configs/serve/azure-conv-2023-like.json --slo-ttft 1 --slo-tpot 0.1 --format json 2> "$errors")
end=$(date +%s.%N)
wall=$(echo "$end - $start" | bc -l)
# The engine's wall time is progress, so it is on stderr: "serve: simulated N requests in X s wall".
engine=$(sed -n 's/^serve: simulated [0-9]* requests in \([0-9.]*\) s wall$/\1/p' "$errors")
echo "$out" | json "f'azure hour: {d[\"requests\"]} requests on {d[\"gpus\"]} GPUs, engine $engine s, TTFT p90 {d[\"ttft_s\"][\"p90\"]*1e3:.0f} ms, TPOT p90 {d[\"tpot_s\"][\"p90\"]*1e3:.1f} ms, attainment {100*d[\"slo\"][\"attainment\"]:.1f} %'"
printf 'azure hour: whole command %.2f s (target <= 10 s)\n' "$wall"
awk -v w="$wall" 'BEGIN { exit !(w <= 10) }' || { echo "FAIL: over 10 s" >&2; exit 1; }

for rule in joint separate; do
  out=$("$binary" serve --model configs/serve/opt-13b.json --cluster a100-hdr --profile a100 \
    --deployment configs/serve/distserve-opt-13b-deployment.json --workload configs/serve/sharegpt-like.json \
    --slo-ttft 0.2 --slo-tpot 0.1 --goodput --slo-rule "$rule" --format json)
  echo "$out" | json "f'distserve quick-start ({d[\"goodput\"][\"rule\"]}): goodput {d[\"goodput\"][\"rate_per_s_per_gpu\"]:.3f} req/s per GPU (reference 1.56, ratio {d[\"goodput\"][\"rate_per_s_per_gpu\"]/1.56:.2f}), {len(d[\"goodput\"][\"steps\"])} simulations, iterations priced by ' + ', '.join(f for p in d['pools'] for f in p['measured_fits'])"
done
# DistServe's 300-request samples are noisy: the same check over workload seeds 1-10.
for rule in joint separate; do
  for seed in $(seq 1 10); do
    w=$(python3 -c "import json; d=json.load(open('configs/serve/sharegpt-like.json')); d['seed']=$seed; print(json.dumps(d))")
    "$binary" serve --model configs/serve/opt-13b.json --cluster a100-hdr --profile a100 \
      --deployment configs/serve/distserve-opt-13b-deployment.json --workload "$w" \
      --slo-ttft 0.2 --slo-tpot 0.1 --goodput --slo-rule "$rule" --format json
  done | python3 -c "import json,sys; dec=json.JSONDecoder(); t=sys.stdin.read(); v=[]; i=0
while i < len(t.rstrip()):
    d, i = dec.raw_decode(t, i); v.append(d['goodput']['rate_per_s_per_gpu']); i += 1
print(f'distserve quick-start ($rule), workload seeds 1-10: mean {sum(v)/len(v):.3f} req/s per GPU (ratio {sum(v)/len(v)/1.56:.2f}), min {min(v):.3f}, max {max(v):.3f}')"
done

out=$("$binary" serve --model mixtral-8x7b --cluster a100-hdr --deployment '{"pools": [
  {"name": "prefill", "role": "prefill", "gpus": 8, "tensor_parallel_size": 4},
  {"name": "attention", "role": "attention", "gpus": 8, "tensor_parallel_size": 2, "afd": {"expert_pool": "experts"}},
  {"name": "experts", "role": "expert", "gpus": 8}]}' \
  --workload '{"arrival": {"process": "poisson", "rate_per_s": 20}, "count": 2000,
  "input": {"distribution": "lognormal", "mean": 1000, "sigma": 0.5}, "output": {"distribution": "lognormal", "mean": 200, "sigma": 0.8}}' \
  --format json)
echo "$out" | json "'attention/FFN: ' + ', '.join(f'{p[\"name\"]} event level {p[\"afd_iteration_s\"][\"event_level\"]*1e3:.2f} ms vs closed form {p[\"afd_iteration_s\"][\"closed_form\"]*1e3:.2f} ms ({100*(p[\"afd_iteration_s\"][\"event_level\"]/p[\"afd_iteration_s\"][\"closed_form\"]-1):+.2f} %)' for p in d['pools'] if 'afd_iteration_s' in p)"

# 4. --network flows at 1,024 GPUs: wall time and peak RSS (the child process that runs SimGrid
# included: /usr/bin/time reports the largest of the process tree's members), medians of 3.
require_time bench_serve
walls=(); rss=()
for run in 1 2 3; do
  /usr/bin/time -f '%e %M' -o "$errors.time" "$binary" serve --model llama-3-70b --cluster a100-hdr \
    --deployment configs/serve/llama-3-70b-pd-1024.json --workload configs/serve/azure-conv-2023-like.json \
    --rate 50 --slo-ttft 1 --slo-tpot 0.1 --network flows --format json > "$errors.out" 2> "$errors"
  read -r w m < "$errors.time"
  walls+=("$w"); rss+=("$m")
done
json_out=$(cat "$errors.out")
rm -f "$errors.time" "$errors.out"
wall=$(printf '%s\n' "${walls[@]}" | median)
mem=$(printf '%s\n' "${rss[@]}" | median)
echo "$json_out" | json "f'flows, 1,024 GPUs: {d[\"requests\"]} requests at {d[\"rate_per_s\"]:.0f} req/s, {d[\"network\"][\"flows\"]} flows, KV transfer mean {d[\"kv_transfer_s_mean\"]*1e3:.2f} ms ({d[\"network\"][\"kv_transfer_slowdown_mean\"]:.3f}x alone), TTFT p90 {d[\"ttft_s\"][\"p90\"]*1e3:.0f} ms, TPOT p90 {d[\"tpot_s\"][\"p90\"]*1e3:.1f} ms'"
printf 'flows, 1,024 GPUs: whole command %s s (runs: %s; target <= 60 s), peak RSS %.0f MiB (target <= 2048 MiB)\n' \
  "$wall" "${walls[*]}" "$(echo "$mem / 1024" | bc -l)"
awk -v w="$wall" -v m="$mem" 'BEGIN { exit !(w <= 60 && m <= 2 * 1024 * 1024) }' || { echo "FAIL: over 60 s or 2 GiB" >&2; exit 1; }
