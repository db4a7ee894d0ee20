#!/usr/bin/env bash
# Fuzzes the input loaders with libFuzzer (clang from Debian) under AddressSanitizer and
# UndefinedBehaviorSanitizer, each target seeded with the repository's own inputs and fixtures.
#   scripts/fuzz.sh [RUNS] [TARGET...]     defaults: 1000000 runs, every target
# Builds build-fuzz/ (clang, CLUSTERSIM_FUZZ=ON). Per target: a corpus in build-fuzz/corpus/NAME
# (seeds + what the fuzzer adds), crashers, leaks and timeouts (> 1 s) written to
# tests/data/fuzz/NAME/ (commit them: they are regression fixtures), and one summary line.
# REPLAY=1 only replays tests/data/fuzz and the seeds under the fuzzer's sanitizers (seconds). Exit 1
# on any finding. CI replays tests/data/fuzz without clang in every build (fuzz_corpus_test).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
shift || true
build_dir=build-fuzz
command -v clang++ > /dev/null || { echo "fuzz: clang++ not found (Debian package: clang)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERSIM_FUZZ=ON \
  -DBUILD_TESTING=OFF >&2
targets=("$@")
if ((${#targets[@]} == 0)); then
  # Every target tests/fuzz/CMakeLists.txt defines.
  cmake --build "$build_dir" --target fuzz_all >&2
  for b in "$build_dir"/tests/fuzz/fuzz_*; do targets+=("${b##*/fuzz_}"); done
else
  build_targets=()
  for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
  cmake --build "$build_dir" "${build_targets[@]}" >&2
fi

seeds() {  # target -> seed files (repository inputs and bad-input fixtures)
  case $1 in
    model_config) ls configs/models/*.json tests/data/bad/model_*.json configs/serve/opt-13b.json ;;
    cluster) ls configs/clusters/*.json tests/data/bad/cluster_*.json ;;
    plan) ls configs/plans/*.json tests/data/bad/{tp,pp,vpp,seq,recompute,range,type,sharding,enum}*.json ;;
    deployment) ls configs/serve/*deployment*.json configs/serve/llama-3-70b-pd-64.json tests/data/bad/serve/deployment_*.json ;;
    workload) ls configs/serve/{sharegpt-like,azure-conv-2023-like}.json tests/data/bad/serve/workload_*.json ;;
    validation_cases) ls configs/validation/*.json tests/data/bad/validation_cases_bad.json tests/data/bad/validation_unstated_bad.json ;;
    profile) ls configs/profiles/*.json tests/data/bad/profile_bad_fit.json ;;
    records) ls tests/data/bad/records_unknown_source.json ;;
    nccl_tests_log) ls tests/data/nccl_tests/*.log tests/data/bad/nccl_tests_bad_time.log ;;
    nccl_tests_json) ls tests/data/nccl_tests/*.json ;;
    kineto) ls tests/data/bad/kineto_malformed.json ;;
    published_table) ls configs/measurements/*/*.csv tests/data/published/*.csv tests/data/bad/table_bad_value.csv ;;
    straggler_trace) ls tests/data/whatif/*.csv ;;
    straggler_meta) ls tests/data/whatif/*.yaml ;;
    request_trace_azure) ls tests/data/bad/serve/azure_bad.csv ;;
    request_trace_mooncake) ls tests/data/bad/serve/mooncake_bad.jsonl ;;
    fleet) ls configs/fleets/*.json tests/data/bad/fleet_*.json ;;
    training_scenario) ls examples/stragglers*.json ;;
    whatif_scenario) ls tests/data/whatif/*.json ;;
    sweep_spec) ls examples/sweep-*.json ;;
    routing_histogram) ls tests/data/bad/routing_histogram_*.json ;;
    document_lengths) ls examples/document-lengths-*.json ;;
    workload_pairs) ls tests/data/bad/serve/pairs_bad.csv ;;
    engine_throughput) ls configs/measurements/serving/trtllm-1.0-offline-throughput.csv tests/data/bad/serve/engine_table_bad.csv ;;
    megatron_args | sweep_results) ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  findings="tests/data/fuzz/$t"
  mkdir -p "$corpus" "$findings"
  for f in $(seeds "$t"); do cp "$f" "$corpus/"; done
  if [[ $t == megatron_args ]]; then
    python3 -c "
import json
for i, c in enumerate(json.load(open('tests/data/bad_inputs.json'))):
    a = c['args']
    if '--from-megatron-args' in a:
        open('$corpus/seed-%d.txt' % i, 'w').write(a[a.index('--from-megatron-args') + 1])"
  fi
  if [[ $t == request_trace_azure ]]; then
    printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n' > "$corpus/seed.csv"
  fi
  if [[ $t == request_trace_mooncake ]]; then
    printf '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}\n{"timestamp": 27, "input_length": 2000, "output_length": 10, "hash_ids": [1]}\n' > "$corpus/seed.jsonl"
  fi
  if [[ $t == sweep_results ]]; then
    printf '{"key": "3f2a", "tier": "estimate", "status": "ok", "step_time_s": 1.5}\n{"key": "77c1", "tier": "simulate", "status": "failed"}\n' > "$corpus/seed.jsonl"
  fi
  if [[ $t == workload_pairs ]]; then
    printf 'prompt_len,output_len\n12,34\n2045,1\n' > "$corpus/seed.csv"
  fi
  binary="$build_dir/tests/fuzz/fuzz_$t"
  log="$build_dir/fuzz-$t.log"
  start=$EPOCHREALTIME
  if [[ ${REPLAY:-0} == 1 ]]; then
    # Every committed finding and seed once, no mutation.
    set +e
    ASAN_OPTIONS=detect_leaks=1 "$binary" -runs=0 -timeout=1 -print_final_stats=1 "$corpus" "$findings" > "$log" 2>&1
    rc=$?
    set -e
  else
    set +e
    ASAN_OPTIONS=detect_leaks=1 "$binary" -runs="$runs" -timeout=1 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" > "$log" 2>&1
    rc=$?
    set -e
  fi
  end=$EPOCHREALTIME
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  artifacts=$(find "$findings" -type f | wc -l)
  printf '%-24s exit %d, %s executions in %.0f s, corpus %d files, findings in %s: %d\n' "$t" "$rc" "${execs:-?}" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" "$(find "$corpus" -type f | wc -l)" "$findings" "$artifacts"
  if ((rc != 0)); then
    status=1
    grep -m3 -E "ERROR|not an InputError|SUMMARY" "$log" | sed 's/^/    /' || true
  fi
done
exit $status
