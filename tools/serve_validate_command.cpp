#include "tools/serve_validate_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/accounting/parameter_count.hpp"
#include "models/cost/cost_model.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "models/inputs/serve_workload.hpp"
#include "sim/serving/serve_engine.hpp"
#include "sim/serving/serve_metrics.hpp"
#include "tools/cli_common.hpp"
#include "traces/engine_throughput_table.hpp"

namespace clustersim::cli {

namespace {

struct ServeValidateOptions {
  std::string table;
  std::string only;
  std::string policies = "engine";
  Format format = Format::kTable;
};

// The batch limits trtllm-bench runs with when its command line gives neither --max_batch_size
// nor --max_num_tokens (TensorRT-LLM tensorrt_llm/bench/benchmark/utils/general.py get_settings ->
// tensorrt_llm/bench/build/tuning.py calc_engine_setting + finetune_setting, read at 04cba882):
// requests whose (isl + osl) tokens fit the KV memory (the GPUs' total memory less the weights,
// times kv_cache_free_gpu_mem_fraction; at least one KV head per rank), capped at 4,096, rounded
// up to 32/128/256; tokens = that batch x (1 + isl/osl), capped at 32,768, at least 2,048 and
// rounded up to 256/512/1,024; with chunked prefill off (the default) at least max_isl + the batch.
struct EngineLimits {
  std::int64_t max_batch_size = 0, max_num_tokens = 0;
};

EngineLimits trtllm_bench_limits(const ModelSpec& model, const ClusterSpec& cluster, const EngineThroughputRow& row) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const double weight_bytes = row.dtype == "fp8" ? 1.0 : 2.0;  // BYTES_PER_ELEM: FP8 1, unquantised 2
  const double kv_bytes = weight_bytes;                           // the FP8 checkpoints quantise the KV cache too
  const double kv_heads = static_cast<double>(std::max(row.tp, model.num_key_value_heads));
  const double per_token_gib =
      2.0 * static_cast<double>(model.num_layers) * kv_heads * static_cast<double>(model.head_dim) * kv_bytes / gib;
  const double engine_gib = static_cast<double>(count_parameters(model).total) * weight_bytes / gib;
  const double total_gib = static_cast<double>(cluster.gpu.hbm_bytes) / gib * static_cast<double>(row.tp);
  const double cache_gib = (total_gib - engine_gib) * row.kv_cache_fraction;
  const double max_requests = cache_gib / (per_token_gib * static_cast<double>(row.isl + row.osl));
  const double raw_bs = std::min(max_requests, 4096.0);
  const double raw_tokens =
      std::min(raw_bs * (1.0 + static_cast<double>(row.isl) / static_cast<double>(row.osl)), 32768.0);
  auto round_up = [](double v, double step) { return static_cast<std::int64_t>(step * std::ceil(v / step)); };
  EngineLimits l;
  if (raw_bs < 256) {
    l.max_batch_size = std::max<std::int64_t>(64, round_up(raw_bs, 32));
  } else if (raw_bs < 1024) {
    l.max_batch_size = round_up(raw_bs, 128);
  } else {
    l.max_batch_size = round_up(raw_bs, 256);
  }
  if (raw_tokens < 4096) {
    l.max_num_tokens = std::max<std::int64_t>(2048, round_up(raw_tokens, 256));
  } else if (raw_tokens < 8192) {
    l.max_num_tokens = round_up(raw_tokens, 512);
  } else {
    l.max_num_tokens = round_up(raw_tokens, 1024);
  }
  l.max_num_tokens = std::max(l.max_num_tokens, row.isl + l.max_batch_size);
  return l;
}

struct RowResult {
  const EngineThroughputRow* row = nullptr;
  std::string id, group;
  EngineLimits limits;
  double predicted = 0, error = 0;
  std::int64_t preemptions = 0;
  double kv_peak = 0, mean_batch_tokens = 0;
};

std::string row_id(const EngineThroughputRow& r) {
  return fmt::format("{}-{} {} {} tp{} {}/{}", r.engine, r.engine_version, r.model, r.cluster.substr(0, r.cluster.find('-')),
                     r.tp, r.isl, r.osl);
}

std::string row_group(const EngineThroughputRow& r, bool moe) {
  return fmt::format("{}-{} {} {} TP{}{}", r.engine, r.engine_version, r.model,
                     r.cluster.substr(0, r.cluster.find('-')), r.tp, moe ? " (MoE)" : "");
}

void run(const ServeValidateOptions& o) {
  const EngineThroughputTable table = load_engine_throughput_table(o.table);
  struct Inputs {
    ModelSpec model;
    ClusterSpec cluster;
    LoadedProfile profile;
    std::unique_ptr<CostModel> cost;
  };
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Inputs>> inputs;
  std::vector<RowResult> results;
  for (const auto& row : table.rows) {
    const std::string id = row_id(row);
    if (!o.only.empty() && id.find(o.only) == std::string::npos) continue;
    auto& in = inputs[{row.model, row.cluster}];
    if (!in) {
      Diagnostics diag;
      in = std::make_unique<Inputs>();
      in->model = load_model(row.model, diag);
      in->cluster = load_cluster(row.cluster, diag);
      diag.throw_if_errors();
      in->profile = load_profile_for("", in->cluster);
      in->cost = std::make_unique<CostModel>(in->profile.profile, in->profile.file, in->cluster);
    }
    RowResult r;
    r.row = &row;
    r.id = id;
    r.group = row_group(row, in->model.num_experts > 0);
    const bool vllm = o.policies == "vllm";
    // --policies vllm: the serve defaults the hand comparison used (vLLM's scheduler and KV
    // blocks, TensorRT-LLM's LLM-API limits 8192 tokens / 2048 sequences).
    r.limits = vllm ? EngineLimits{2048, 8192} : trtllm_bench_limits(in->model, in->cluster, row);
    // One colocated instance of tp GPUs with the engine's limits and KV blocks (TensorRT-LLM's
    // KvCacheConfig: 32 tokens per block, no watermark); experts over the TP ranks.
    nlohmann::json pool{{"name", "engine"},
                        {"role", "colocated"},
                        {"gpus", row.tp},
                        {"tensor_parallel_size", row.tp},
                        {"max_num_batched_tokens", r.limits.max_num_tokens},
                        {"max_num_seqs", r.limits.max_batch_size},
                        {"gpu_memory_utilization", row.kv_cache_fraction}};
    if (!vllm) {
      pool["block_size"] = 32, pool["watermark"] = 0;
      // The perf-overview's llm_options.yml: CUDA graphs for these batch sizes, with padding.
      pool["cuda_graph_batch_sizes"] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192};
    }
    if (in->model.num_experts > 0) pool["expert_parallel_size"] = row.tp;
    const nlohmann::json deployment{
        {"dtype", row.dtype}, {"engine", vllm ? "vllm" : "trtllm"}, {"pools", nlohmann::json::array({pool})}};
    // Every request queued at once: arrivals at 100,000 req/s, fixed lengths.
    const nlohmann::json workload{{"seed", 1},
                                  {"arrival", {{"process", "poisson"}, {"rate_per_s", 100000}}},
                                  {"count", row.num_requests},
                                  {"input", {{"distribution", "fixed"}, {"value", row.isl}}},
                                  {"output", {{"distribution", "fixed"}, {"value", row.osl}}}};
    Diagnostics diag;
    const ServeDeployment dep = load_serve_deployment(deployment.dump(), in->cluster.node.gpus_per_node, diag);
    const WorkloadSpec wl = load_workload_spec(workload.dump(), diag);
    diag.throw_if_errors();
    const sim::ServeSimulator simulator(in->model, dep, in->cluster, *in->cost);
    const sim::ServeOutcome outcome = simulator.run(generate_requests(wl, wl.rate_per_s));
    const sim::ServeSummary s = sim::summarise(outcome, sim::ServeSlo{});
    r.predicted = s.output_tokens_per_s;
    r.error = (r.predicted - row.published) / row.published;
    r.preemptions = outcome.preemptions;
    if (!outcome.pools.empty()) {
      r.kv_peak = outcome.pools[0].kv_utilisation_peak;
      r.mean_batch_tokens = outcome.pools[0].mean_batch_tokens;
    }
    std::cerr << fmt::format("{}: {:.3f} s wall\n", id, outcome.wall_s);
    results.push_back(r);
  }
  if (results.empty()) throw UsageError(fmt::format("--only \"{}\" matches no row of {}", o.only, table.file));
  // MAPE per group (engine, model, GPU, TP), per kind (dense / MoE) and overall.
  std::vector<std::pair<std::string, std::pair<double, int>>> groups;
  std::map<std::string, std::pair<double, int>> kinds;
  double sum = 0, signed_sum = 0;
  for (const auto& r : results) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == r.group; });
    if (it == groups.end()) it = groups.insert(groups.end(), {r.group, {0.0, 0}});
    it->second.first += std::abs(r.error), it->second.second += 1;
    auto& k = kinds[r.group.ends_with("(MoE)") ? "MoE" : "dense"];
    k.first += std::abs(r.error), k.second += 1;
    sum += std::abs(r.error), signed_sum += r.error;
  }
  const double n = static_cast<double>(results.size());
  if (o.format == Format::kJson) {
    nlohmann::ordered_json j;
    j["table"] = table.file;
    auto rows = nlohmann::ordered_json::array();
    for (const auto& r : results) {
      rows.push_back({{"id", r.id},
                      {"group", r.group},
                      {"line", r.row->line},
                      {"metric", r.row->metric},
                      {"published", r.row->published},
                      {"predicted", r.predicted},
                      {"error", r.error},
                      {"max_batch_size", r.limits.max_batch_size},
                      {"max_num_tokens", r.limits.max_num_tokens},
                      {"preemptions", r.preemptions},
                      {"kv_utilisation_peak", r.kv_peak},
                      {"source", r.row->source}});
    }
    j["rows"] = rows;
    auto g = nlohmann::ordered_json::object();
    for (const auto& [name, v] : groups) g[name] = {{"mape", v.first / v.second}, {"rows", v.second}};
    j["mape_by_group"] = g;
    auto k = nlohmann::ordered_json::object();
    for (const auto& [name, v] : kinds) k[name] = {{"mape", v.first / v.second}, {"rows", v.second}};
    j["mape_by_kind"] = k;
    j["mape"] = sum / n;
    j["mean_error"] = signed_sum / n;
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("{:<44} {:>6} {:>6} {:>11} {:>11} {:>8} {:>6}\n", "row", "batch", "tokens", "published",
                           "predicted", "error", "preempt");
  for (const auto& r : results) {
    std::cout << fmt::format("{:<44} {:>6} {:>6} {:>11.0f} {:>11.0f} {:>+7.1f}% {:>6}\n", r.id, r.limits.max_batch_size,
                             r.limits.max_num_tokens, r.row->published, r.predicted, 100 * r.error, r.preemptions);
  }
  std::cout << "\nMAPE by group\n";
  for (const auto& [name, v] : groups) {
    std::cout << fmt::format("  {:<48} {:>5.1f} %  ({} rows)\n", name, 100 * v.first / v.second, v.second);
  }
  for (const auto& [name, v] : kinds) {
    std::cout << fmt::format("{} MAPE {:.1f} % ({} rows)\n", name, 100 * v.first / v.second, v.second);
  }
  std::cout << fmt::format("overall MAPE {:.1f} %, mean signed error {:+.1f} % ({} rows)\n", 100 * sum / n,
                           100 * signed_sum / n, results.size());
}

}  // namespace

void register_serve_validate_command(CLI::App& app) {
  auto o = std::make_shared<ServeValidateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve-validate", "Published offline engine throughputs vs. the serve engine, row by row, with MAPE per group");
  cmd->footer(
      "Examples:\n"
      "  clustersim serve-validate configs/measurements/serving/trtllm-1.0-offline-throughput.csv\n"
      "  clustersim serve-validate configs/measurements/serving/trtllm-1.0-offline-throughput.csv \\\n"
      "      --only \"llama-3.1-8b h100\" --format json");
  cmd->add_option("table", o->table, "Engine throughput table (CSV, docs/serve.md)")->required();
  cmd->add_option("--only", o->only, "Run only the rows whose id (as printed) contains this text");
  cmd->add_option("--policies", o->policies,
                  "engine (default: each row's engine, its scheduler, KV policy and batch limits) or vllm (serve's "
                  "vLLM policies with 8192 tokens / 2048 sequences per iteration, for comparison)")
      ->check(CLI::IsMember({"engine", "vllm"}));
  add_format_option(*cmd, o->format);
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
