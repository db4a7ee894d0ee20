#include "tools/validate_command.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>

#include "tools/cli_common.hpp"
#include "tools/operation_table.hpp"
#include "tools/simulate_command.hpp"
#include "models/accounting/training_flops.hpp"
#include "tools/training_run.hpp"
#include "tools/units_format.hpp"
#include "models/inputs/validation_case.hpp"

namespace clustersim::cli {

namespace {

struct ValidateOptions {
  std::string cases;
  std::string mode = "estimate";
  std::string fleet;
  std::vector<std::string> ablate;
  Format format = Format::kTable;
  bool coverage = false;
};

// The predictions over a case's unstated plan settings (ValidationCase::unstated).
struct UnstatedRange {
  int settings = 0;   // combinations
  int priced = 0;     // valid plans that fit in memory
  int invalid = 0;    // rejected by the plan rules
  int too_big = 0;    // valid, estimated not to fit the GPU (so not what ran)
  double min = 0, max = 0;
};

struct Comparison {
  std::string id, group, metric;
  double measured = 0, predicted = 0, error = 0, tolerance = 0;
  std::optional<UnstatedRange> unstated;
};

// Megatron-LM SC'21 Eq. 3: FLOPs of one iteration with full recomputation,
// 96 B s l h^2 (1 + s / 6h + V / 16 l h).
double megatron_sc21_flops(const ModelSpec& m, const ParallelLayout& l) {
  double B = static_cast<double>(l.global_batch_size), s = static_cast<double>(l.seq_length);
  double layers = static_cast<double>(m.num_layers), h = static_cast<double>(m.hidden_size);
  double V = static_cast<double>(m.vocab_size);
  return 96.0 * B * s * layers * h * h * (1.0 + s / (6.0 * h) + V / (16.0 * layers * h));
}

// Model FLOPs per token with the attention core over all s keys instead of the causal average,
// as NeMo's performance tables count them (their 12·s/h term per layer).
double full_attention_flops_per_token(const ModelSpec& m, std::int64_t seq_length) {
  const TrainingFlops f = training_flops_per_token(m, seq_length, Recompute::kNone, 0.0);
  const double unmasked = static_cast<double>(seq_length) / causal_attended_keys(seq_length, m.sliding_window);
  return f.model() + 3.0 * f.attention_core_forward * (unmasked - 1.0);
}

double predicted_metric(const std::string& metric, const ValidationCase& c, const TrainingRun& r) {
  const TrainingEstimate& e = r.estimate;
  auto peak = r.cluster.gpu.peak_flops_per_s(Dtype::kBf16);
  if (!peak) peak = r.cluster.gpu.peak_flops_per_s(Dtype::kFp16);
  double flops_per_gpu_per_s = 0;
  switch (c.flops_convention) {
    case FlopsConvention::kModel: flops_per_gpu_per_s = e.tflops_per_gpu * 1e12; break;
    case FlopsConvention::kFullAttention:
      flops_per_gpu_per_s = e.tokens_per_s_per_gpu * full_attention_flops_per_token(r.model, r.layout.seq_length);
      break;
    case FlopsConvention::kHardware: flops_per_gpu_per_s = e.hfu * *peak; break;
    case FlopsConvention::kMegatronSc21:
      flops_per_gpu_per_s = megatron_sc21_flops(r.model, r.layout) / e.step_time_s / static_cast<double>(r.layout.world);
      break;
  }
  if (metric == "step_time_s") return e.step_time_s;
  if (metric == "tokens_per_s") return e.tokens_per_s;
  if (metric == "tokens_per_s_per_gpu") return e.tokens_per_s_per_gpu;
  if (metric == "tflops_per_gpu") return flops_per_gpu_per_s / 1e12;
  return flops_per_gpu_per_s / *peak;  // mfu
}

// Every combination of the case's unstated settings estimated; per metric, the range of the
// predictions of the plans that are valid and fit.
std::map<std::string, UnstatedRange> unstated_ranges(const ValidationCase& c, const ModelSpec& model,
                                                     const ClusterSpec& cluster, const LoadedProfile& profile,
                                                     const ValidateOptions& o) {
  std::size_t settings = 1;
  for (const auto& entry : c.unstated) settings *= entry.second.size();
  std::map<std::string, UnstatedRange> ranges;
  UnstatedRange counts;
  counts.settings = static_cast<int>(settings);
  for (std::size_t k = 0; k < settings; ++k) {
    TrainingRun r;
    try {
      Diagnostics diag;
      TrainPlan plan = load_plan(plan_with_unstated_setting(c, k), "", diag);
      diag.throw_if_errors();
      r = run_estimate(model, plan, cluster, c.num_gpus, profile.profile, profile.file, diag, parse_ablate(o.ablate));
    } catch (const InputErrors&) {
      ++counts.invalid;
      continue;
    }
    if (!r.estimate.fits_in_memory) {
      ++counts.too_big;
      continue;
    }
    ++counts.priced;
    for (const auto& [metric, measured] : c.measured) {
      const double predicted = predicted_metric(metric, c, r);
      auto [it, first] = ranges.try_emplace(metric, UnstatedRange{0, 0, 0, 0, predicted, predicted});
      it->second.min = std::min(it->second.min, predicted);
      it->second.max = std::max(it->second.max, predicted);
    }
  }
  for (auto& [metric, range] : ranges) {
    range.settings = counts.settings, range.priced = counts.priced;
    range.invalid = counts.invalid, range.too_big = counts.too_big;
  }
  return ranges;
}

void run(const ValidateOptions& o) {
  ValidationSuite suite = load_validation_cases(o.cases);
  std::vector<Comparison> rows;
  std::vector<std::string> not_fitting;  // cases whose plan the memory estimate says cannot run
  // Per case, how its bottleneck stage's GEMMs and attention were priced (estimate --ops).
  std::vector<std::pair<std::string, nlohmann::ordered_json>> coverage;
  std::vector<std::pair<std::string, std::string>> coverage_lines;
  for (const auto& c : suite.cases) {
    Diagnostics diag;
    ModelSpec model = load_model(c.model, diag);
    ClusterSpec cluster = load_cluster(c.cluster, diag);
    TrainPlan plan = load_plan(c.plan, "", diag);
    diag.throw_if_errors();
    apply_fleet_option(o.fleet, cluster);
    LoadedProfile profile = load_profile_for(c.profile, cluster);
    TrainingRun r =
        run_estimate(model, plan, cluster, c.num_gpus, profile.profile, profile.file, diag, parse_ablate(o.ablate));
    {
      const CostModel costs(profile.profile, profile.file, r.cluster);
      coverage.emplace_back(c.id, coverage_json(r, costs));
      if (o.coverage) coverage_lines.emplace_back(c.id, coverage_line(r, costs));
    }
    if (o.mode == "simulate") {
      use_step_time(r.estimate, simulate_in_child(r, profile.profile, profile.file, {}).step_time_s);
    }
    const std::map<std::string, UnstatedRange> ranges =
        c.unstated.empty() ? std::map<std::string, UnstatedRange>{} : unstated_ranges(c, model, cluster, profile, o);
    for (const auto& [metric, measured] : c.measured) {
      double predicted = predicted_metric(metric, c, r);
      rows.push_back({c.id, c.group, metric, measured, predicted, (predicted - measured) / measured, c.tolerance, {}});
      if (auto it = ranges.find(metric); it != ranges.end()) rows.back().unstated = it->second;
    }
    // The run happened, so a plan estimated not to fit says the memory model is off for it.
    if (!r.estimate.fits_in_memory) {
      std::cerr << fmt::format("warning: {}: the plan is estimated at {} per GPU, more than the {} of HBM it ran in\n",
                               c.id, human_bytes(r.estimate.memory_per_gpu_bytes),
                               human_bytes(static_cast<double>(r.cluster.gpu.hbm_bytes)));
      not_fitting.push_back(c.id);
    }
    std::cerr << fmt::format("{}: done\n", c.id);
  }
  // Summaries: MAPE per group and overall, worst case.
  std::map<std::string, std::pair<double, int>> groups;
  double sum = 0, worst = 0;
  int failures = 0;
  for (const auto& row : rows) {
    groups[row.group].first += std::abs(row.error);
    groups[row.group].second += 1;
    sum += std::abs(row.error);
    worst = std::max(worst, std::abs(row.error));
    failures += std::abs(row.error) > row.tolerance ? 1 : 0;
  }
  double mape = rows.empty() ? 0 : sum / static_cast<double>(rows.size());
  if (o.format == Format::kJson) {
    nlohmann::ordered_json j;
    j["cases_file"] = suite.file;
    j["mode"] = o.mode;
    auto list = nlohmann::ordered_json::array();
    for (const auto& row : rows) {
      list.push_back({{"id", row.id}, {"group", row.group}, {"metric", row.metric}, {"measured", row.measured},
                      {"predicted", row.predicted}, {"error", row.error}, {"tolerance", row.tolerance},
                      {"within_tolerance", std::abs(row.error) <= row.tolerance}});
      if (row.unstated) {
        const UnstatedRange& u = *row.unstated;
        list.back()["unstated"] = {{"settings", u.settings}, {"priced", u.priced}, {"invalid", u.invalid},
                                   {"too_big_for_memory", u.too_big}, {"min", u.min}, {"max", u.max},
                                   {"min_error", (u.min - row.measured) / row.measured},
                                   {"max_error", (u.max - row.measured) / row.measured},
                                   {"measured_inside", u.min <= row.measured && row.measured <= u.max}};
      }
    }
    j["comparisons"] = list;
    auto per_group = nlohmann::ordered_json::object();
    for (const auto& [g, v] : groups) per_group[g] = {{"mape", v.first / v.second}, {"comparisons", v.second}};
    j["mape_by_group"] = per_group;
    j["mape"] = mape;
    j["worst_error"] = worst;
    j["outside_tolerance"] = failures;
    j["estimated_not_to_fit"] = not_fitting;
    auto cov = nlohmann::ordered_json::object();
    for (const auto& [id, c] : coverage) cov[id] = c;
    j["coverage"] = cov;
    std::cout << j.dump(2) << '\n';
  } else {
    std::cout << fmt::format("{:<36} {:<22} {:>12} {:>12} {:>8}  {}\n", "case", "metric", "measured", "predicted",
                             "error", "");
    for (const auto& row : rows) {
      std::cout << fmt::format("{:<36} {:<22} {:>12.4g} {:>12.4g} {:>+7.1f}%  {}\n", row.id, row.metric, row.measured,
                               row.predicted, 100 * row.error,
                               std::abs(row.error) > row.tolerance ? fmt::format("OUTSIDE {:.0f} %", 100 * row.tolerance) : "");
    }
    std::cout << "\nMAPE by group\n";
    for (const auto& [g, v] : groups) {
      std::cout << fmt::format("  {:<60} {:>5.1f} %  ({} comparisons)\n", g, 100 * v.first / v.second, v.second);
    }
    std::cout << fmt::format("overall MAPE {:.1f} %, worst {:.1f} %, {} of {} outside tolerance\n", 100 * mape,
                             100 * worst, failures, rows.size());
    if (!not_fitting.empty()) {
      std::cout << fmt::format("estimated not to fit in memory, though they ran: {}\n", fmt::join(not_fitting, ", "));
    }
    bool any_unstated = false;
    for (const auto& row : rows) any_unstated = any_unstated || row.unstated.has_value();
    if (any_unstated) {
      std::cout << "\nOver the plan settings the source does not state (the case's \"unstated\"), every valid plan that fits\n";
      std::cout << fmt::format("{:<36} {:<22} {:>12} {:>17}  {}\n", "case", "metric", "measured", "error range", "plans");
      for (const auto& row : rows) {
        if (!row.unstated) continue;
        const UnstatedRange& u = *row.unstated;
        std::cout << fmt::format("{:<36} {:<22} {:>12.4g} {:>+7.1f}% .. {:>+6.1f}%  {} of {}{}\n", row.id, row.metric,
                                 row.measured, 100 * (u.min - row.measured) / row.measured,
                                 100 * (u.max - row.measured) / row.measured, u.priced, u.settings,
                                 u.min <= row.measured && row.measured <= u.max ? ", measured inside" : "");
      }
    }
    if (o.coverage) {
      std::cout << "\nGEMM and attention calls of each case's bottleneck stage against their fits' measured range\n";
      for (const auto& [id, line] : coverage_lines) std::cout << fmt::format("  {:<36} {}\n", id, line);
    }
  }
  if (failures > 0) throw ExitWithCode{1};
}

}  // namespace

void register_validate_command(CLI::App& app) {
  auto o = std::make_shared<ValidateOptions>();
  CLI::App* cmd = app.add_subcommand("validate", "Predicted vs. measured on published training runs; exit 1 when a case is outside its tolerance");
  cmd->footer(
      "Examples:\n"
      "  clustersim validate configs/validation/dev-set.json\n"
      "  clustersim validate configs/validation/nemo-long-sequence.json --format json");
  cmd->add_option("cases", o->cases, "Case file (docs/validation.md)")->required();
  cmd->add_option("--mode", o->mode, "estimate (closed form) or simulate (SimGrid replay)")
      ->check(CLI::IsMember({"estimate", "simulate"}))
      ->default_str("estimate");
  add_fleet_option(*cmd, o->fleet);
  add_ablate_option(*cmd, o->ablate);
  add_format_option(*cmd, o->format);
  cmd->add_flag("--coverage", o->coverage,
                "Also list, per case, the GEMM and attention calls priced inside, outside (by how much) or by "
                "another fit's range (always in JSON)");
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
