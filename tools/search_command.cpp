#include "tools/search_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "tools/cli_common.hpp"
#include "models/planning/plan_search.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

namespace {

struct SearchOptions {
  std::string model, cluster, profile, fleet;
  std::int64_t gpus = 0, global_batch_size = 0, seq_length = 0;
  std::size_t top = 10;
  bool fp8 = false;
  Format format = Format::kTable;
};

std::string recompute_name(Recompute r) {
  return r == Recompute::kFull ? "full" : r == Recompute::kSelective ? "selective" : "none";
}

// A candidate as a plan file (Megatron-LM keys): what `estimate --plan` needs to price it again.
nlohmann::ordered_json plan_json(const TrainPlan& p) {
  nlohmann::ordered_json j;
  j["tensor_model_parallel_size"] = p.tensor_model_parallel_size;
  j["pipeline_model_parallel_size"] = p.pipeline_model_parallel_size;
  j["context_parallel_size"] = p.context_parallel_size;
  j["expert_model_parallel_size"] = p.expert_model_parallel_size;
  if (p.num_virtual_stages_per_pipeline_rank) j["num_virtual_stages_per_pipeline_rank"] = *p.num_virtual_stages_per_pipeline_rank;
  if (p.decoder_first_pipeline_num_layers) j["decoder_first_pipeline_num_layers"] = *p.decoder_first_pipeline_num_layers;
  if (p.decoder_last_pipeline_num_layers) j["decoder_last_pipeline_num_layers"] = *p.decoder_last_pipeline_num_layers;
  j["micro_batch_size"] = p.micro_batch_size;
  if (p.global_batch_size) j["global_batch_size"] = *p.global_batch_size;
  j["seq_length"] = p.seq_length;
  j["sequence_parallel"] = p.sequence_parallel;
  if (p.recompute_granularity != Recompute::kNone) j["recompute_granularity"] = recompute_name(p.recompute_granularity);
  if (p.recompute_granularity == Recompute::kFull) {
    j["recompute_method"] = p.recompute_method == RecomputeMethod::kBlock ? "block" : "uniform";
    if (p.recompute_num_layers) j["recompute_num_layers"] = *p.recompute_num_layers;
  }
  j["use_distributed_optimizer"] = p.use_distributed_optimizer;
  j["overlap_grad_reduce"] = p.overlap_grad_reduce;
  // Megatron gathers parameters only with the distributed optimizer (and rejects the flag without it).
  if (p.use_distributed_optimizer) j["overlap_param_gather"] = p.overlap_param_gather;
  j["bf16"] = p.precision == Precision::kBf16;
  if (p.fp8_format == Fp8Format::kHybrid) j["fp8_format"] = "hybrid";
  return j;
}

void run(const SearchOptions& o) {
  Diagnostics diag;
  ModelSpec model = load_model(o.model, diag);
  ClusterSpec cluster = load_cluster(o.cluster, diag);
  diag.throw_if_errors();
  apply_fleet_option(o.fleet, cluster);
  diag.throw_if_errors();
  LoadedProfile profile = load_profile_for(o.profile, cluster);
  CostModel costs(profile.profile, profile.file, cluster);
  SearchRequest req;
  req.gpus = o.gpus;
  req.global_batch_size = o.global_batch_size;
  req.seq_length = o.seq_length;
  req.top = o.top;
  req.base.precision = Precision::kBf16;
  if (o.fp8) req.base.fp8_format = Fp8Format::kHybrid;
  req.base.overlap_grad_reduce = true;
  req.base.overlap_param_gather = true;
  SearchResult r = search_plans(model, cluster, costs, req);
  const double rate = r.seconds > 0 ? 1.0 / r.seconds : 0.0;
  std::cerr << fmt::format(
      "searched {} candidate plans in {:.2f} s ({:.0f} per second; {} estimated, {:.0f} per second; {} scheduled in full)\n",
      r.enumerated, r.seconds, static_cast<double>(r.enumerated) * rate, r.evaluated, static_cast<double>(r.evaluated) * rate,
      r.scheduled);
  if (o.format == Format::kJson) {
    nlohmann::ordered_json j;
    j["model"] = model.name;
    j["cluster"] = cluster.name;
    j["profile"] = profile.file;
    j["num_gpus"] = o.gpus;
    j["enumerated"] = r.enumerated;
    j["invalid"] = r.invalid;
    j["invalid_reasons"] = r.invalid_reasons;    // rule (numbers as '#') -> candidates
    j["invalid_examples"] = r.invalid_examples;  // rule -> its first candidate's message
    j["too_big_for_memory"] = r.too_big;
    j["evaluated"] = r.evaluated;
    j["scheduled"] = r.scheduled;
    auto list = nlohmann::ordered_json::array();
    for (const auto& p : r.best) {
      const auto& l = p.layout;
      const auto& e = p.estimate;
      list.push_back({{"tensor_model_parallel_size", l.tp}, {"pipeline_model_parallel_size", l.pp},
                      {"num_virtual_stages_per_pipeline_rank", l.virtual_stages}, {"context_parallel_size", l.cp},
                      {"expert_model_parallel_size", l.ep}, {"data_parallel_size", l.dp},
                      {"micro_batch_size", l.micro_batch_size}, {"recompute_granularity", recompute_name(p.plan.recompute_granularity)},
                      {"use_distributed_optimizer", p.plan.use_distributed_optimizer},
                      {"step_time_s", e.step_time_s}, {"tokens_per_s_per_gpu", e.tokens_per_s_per_gpu}, {"mfu", e.mfu},
                      {"memory_per_gpu_bytes", round_bytes(e.memory_per_gpu_bytes)},
                      {"breakdown", {{"compute_s", e.breakdown.compute_s}, {"bubble_s", e.breakdown.bubble_s},
                                     {"tp_comm_s", e.breakdown.tp_comm_s}, {"cp_comm_s", e.breakdown.cp_comm_s},
                                     {"ep_comm_s", e.breakdown.ep_comm_s}, {"dp_comm_s", e.breakdown.dp_comm_s},
                                     {"pp_comm_s", e.breakdown.pp_comm_s}, {"optimizer_s", e.breakdown.optimizer_s}}},
                      {"plan", plan_json(p.plan)}});
    }
    j["best"] = list;
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("{} on {} x {} ({}), global batch {}, sequence {}, profile {}\n", model.name, o.gpus,
                           cluster.gpu.name, cluster.name, o.global_batch_size, o.seq_length, profile.file);
  std::cout << fmt::format(
      "{} plans enumerated: {} invalid, {} do not fit in {}, {} estimated ({} scheduled in full, the rest bounded out of the top {})\n",
      r.enumerated, r.invalid, r.too_big, human_bytes(static_cast<double>(cluster.gpu.hbm_bytes)), r.evaluated, r.scheduled,
      o.top);
  std::vector<std::pair<std::int64_t, std::string>> reasons;
  for (const auto& [why, n] : r.invalid_reasons) reasons.emplace_back(n, why);
  std::sort(reasons.rbegin(), reasons.rend());
  // Reasons group candidates by rule (numbers collapsed); each prints its first instance.
  for (std::size_t i = 0; i < reasons.size() && i < 5; ++i) {
    std::cout << fmt::format("  invalid: {:>6} x {}{}\n", reasons[i].first, r.invalid_examples.at(reasons[i].second),
                             reasons[i].first > 1 ? " (e.g.)" : "");
  }
  std::cout << fmt::format("\n{:>3} {:>3} {:>3} {:>4} {:>3} {:>3} {:>5} {:>3} {:<9} {:<5} {:>9} {:>10} {:>6} {:>10}  {}\n", "#",
                           "TP", "PP", "VPP", "CP", "EP", "DP", "MBS", "recompute", "dist", "step (s)", "tok/s/GPU",
                           "MFU", "memory", "compute / bubble / tp / cp / ep / dp / pp (s)");
  int rank = 0;
  for (const auto& p : r.best) {
    const auto& l = p.layout;
    const auto& e = p.estimate;
    const auto& b = e.breakdown;
    std::cout << fmt::format("{:>3} {:>3} {:>3} {:>4} {:>3} {:>3} {:>5} {:>3} {:<9} {:<5} {:>9.3f} {:>10.1f} {:>5.1f}% {:>10}  "
                             "{:.2f} / {:.2f} / {:.2f} / {:.2f} / {:.2f} / {:.2f} / {:.2f}\n",
                             ++rank, l.tp, l.pp, l.virtual_stages, l.cp, l.ep, l.dp, l.micro_batch_size,
                             recompute_name(p.plan.recompute_granularity), p.plan.use_distributed_optimizer ? "yes" : "no",
                             e.step_time_s, e.tokens_per_s_per_gpu, 100 * e.mfu, human_bytes(e.memory_per_gpu_bytes),
                             b.compute_s, b.bubble_s, b.tp_comm_s, b.cp_comm_s, b.ep_comm_s, b.dp_comm_s, b.pp_comm_s);
  }
}

}  // namespace

void register_search_command(CLI::App& app) {
  auto o = std::make_shared<SearchOptions>();
  CLI::App* cmd = app.add_subcommand("search", "Enumerate parallel plans, drop those that do not fit, rank by estimate");
  cmd->footer(
      "Example:\n"
      "  clustersim search --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \\\n"
      "      --global-batch-size 2048 --seq-length 8192 --top 5");
  cmd->add_option("--model", o->model, "Hugging Face config.json path, inline JSON, or preset")->required();
  cmd->add_option("--cluster", o->cluster, "Cluster preset or JSON file")->required();
  cmd->add_option("--gpus", o->gpus, "World size")->required()->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--global-batch-size", o->global_batch_size, "Sequences per iteration")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_option("--seq-length", o->seq_length, "Tokens per sequence")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  cmd->add_option("--top", o->top, "How many plans to print")->default_str("10")->check(CLI::Range(1, 1000));
  cmd->add_flag("--fp8", o->fp8, "Train with FP8 GEMMs (Transformer Engine hybrid format)");
  cmd->add_option("--profile", o->profile, "Profile file or shipped name (default: the cluster GPU's)");
  add_fleet_option(*cmd, o->fleet);
  add_format_option(*cmd, o->format);
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
