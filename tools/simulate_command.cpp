#include "tools/simulate_command.hpp"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sim/platform/child_process.hpp"
#include "tools/cli_common.hpp"
#include "tools/mechanism_ledger.hpp"
#include "tools/replay_budget.hpp"
#include "models/cost/cost_model.hpp"
#include "sim/platform/network_simulation.hpp"
#include "sim/training/training_scenario.hpp"

namespace clustersim::cli {

namespace {

using nlohmann::ordered_json;

struct SimulateOptions {
  TrainingInputs inputs;
  std::string scenario, trace, trace_ranks;
  std::uint64_t seed = 0;  // 0: the scenario's seed, else the fleet's default
  bool full = false;
  Format format = Format::kTable;
};

// What crosses the pipe from the child: the result, lossless.
std::string to_wire(const sim::ReplayResult& r) {
  nlohmann::json j;
  const StepBreakdown& b = r.breakdown;
  j["t"] = r.step_time_s;
  j["b"] = {b.compute_s, b.bubble_s, b.optimizer_s, b.tp_comm_s, b.cp_comm_s, b.ep_comm_s,
            b.dp_comm_s, b.pp_comm_s, b.fixed_s, b.variability_s, b.imbalance_s, b.interference_s};
  j["s"] = {r.straggler_s, r.contention_s, r.variability_s};
  j["n"] = {r.critical_activities, r.replicas_simulated, r.activities, r.flows, r.trace_events};
  j["nodes"] = r.slow_nodes_on_path;
  auto causes = nlohmann::json::array();
  for (const auto& c : r.critical_path) causes.push_back({c.cause, c.detail, c.seconds});
  j["c"] = causes;
  return j.dump();
}

sim::ReplayResult from_wire(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  sim::ReplayResult r;
  StepBreakdown& b = r.breakdown;
  r.step_time_s = j["t"];
  const auto& v = j["b"];
  b.compute_s = v[0], b.bubble_s = v[1], b.optimizer_s = v[2], b.tp_comm_s = v[3];
  b.cp_comm_s = v[4], b.ep_comm_s = v[5], b.dp_comm_s = v[6], b.pp_comm_s = v[7];
  b.fixed_s = v[8], b.variability_s = v[9], b.imbalance_s = v[10], b.interference_s = v[11];
  r.straggler_s = j["s"][0], r.contention_s = j["s"][1], r.variability_s = j["s"][2];
  const auto& n = j["n"];
  r.critical_activities = n[0], r.replicas_simulated = n[1], r.activities = n[2], r.flows = n[3], r.trace_events = n[4];
  r.slow_nodes_on_path = j["nodes"].get<std::vector<std::int64_t>>();
  for (const auto& c : j["c"]) r.critical_path.push_back({c[0], c[1], c[2]});
  return r;
}

std::vector<std::int64_t> parse_ranks(const std::string& text) {
  std::vector<std::int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--trace-ranks: \"{}\" is not a rank (give e.g. 0,8,128)", item));
    }
  }
  return out;
}

std::vector<std::int64_t> slowed_nodes(const sim::ReplayPerturbation& p, const ClusterSpec& cluster) {
  std::set<std::int64_t> nodes;
  for (const auto& s : p.slowdowns) nodes.insert(s.rank / cluster.node.gpus_per_node);
  return {nodes.begin(), nodes.end()};
}

ordered_json critical_path_json(const sim::ReplayResult& r) {
  ordered_json j;
  j["step_time_s"] = r.step_time_s;
  j["activities"] = r.critical_activities;
  auto causes = ordered_json::array();
  for (const auto& c : r.critical_path) {
    ordered_json e = {{"cause", c.cause}};
    if (!c.detail.empty()) e["detail"] = c.detail;
    e["seconds"] = c.seconds;
    e["share"] = c.seconds / r.step_time_s;
    causes.push_back(e);
  }
  j["causes"] = causes;
  j["straggler_s"] = r.straggler_s;
  j["variability_s"] = r.variability_s;
  j["contention_s"] = r.contention_s;
  j["slow_nodes"] = r.slow_nodes_on_path;
  return j;
}

void run(const SimulateOptions& o) {
  LoadedProfile profile;
  TrainingRun result = estimate_inputs(o.inputs, profile);
  const ClusterSpec& cluster = result.cluster;
  if (cluster.fabric.topology != "rail_optimized_fat_tree") {
    throw UsageError(fmt::format("simulate needs a rail_optimized_fat_tree cluster, {} has {}", cluster.name,
                                 cluster.fabric.topology));
  }
  std::optional<sim::TrainingScenario> scenario;
  if (!o.scenario.empty()) scenario = sim::read_training_scenario(o.scenario, cluster, result.layout.world);
  if (scenario && o.seed != 0) scenario->seed = o.seed;
  // Limits before work: one representative replica, every replica with --full, and with a
  // scenario at most one more per perturbed rank (bounded by DP).
  sim::ReplayPerturbation perturbation;
  if (scenario) perturbation = sim::resolve_scenario(*scenario, cluster, result.layout.world);
  const auto perturbed = static_cast<std::int64_t>(perturbation.slowdowns.size());
  check_replay_fits_machine(result.layout, o.full ? result.layout.dp : std::min(result.layout.dp, 1 + perturbed));

  sim::ReplayOptions options;
  options.full = o.full;
  if (scenario && scenario->seed != 0) options.fleet_seed = scenario->seed;  // the scenario's seed draws the fleet too
  if (o.seed != 0) options.fleet_seed = o.seed;
  options.trace_path = o.trace;
  if (!o.trace_ranks.empty()) {
    options.trace_ranks = parse_ranks(o.trace_ranks);
    for (std::int64_t r : options.trace_ranks) {
      if (r >= result.layout.world) throw UsageError(fmt::format("--trace-ranks: rank {} outside 0..{}", r, result.layout.world - 1));
    }
  }
  auto timed = [&](const char* what, const sim::ReplayOptions& opts) {
    const auto start = std::chrono::steady_clock::now();
    sim::ReplayResult r = simulate_in_child(result, profile.profile, profile.file, opts);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("simulate: {} iteration {:.4f} s simulated in {:.2f} s wall ({} replica classes, {} activities, {} flows)\n",
                             what, r.step_time_s, wall, r.replicas_simulated, r.activities, r.flows);
    return r;
  };
  std::optional<sim::ReplayResult> baseline;
  if (scenario) {
    sim::ReplayOptions base = options;
    base.trace_path.clear();
    baseline = timed("baseline", base);
    options.perturbation = perturbation;
  }
  const sim::ReplayResult r = timed(scenario ? "scenario" : "symmetric", options);
  std::optional<MechanismLedger> ledger;
  if (o.inputs.by_mechanism) {
    sim::ReplayOptions quiet = options;
    quiet.trace_path.clear();
    ledger = mechanism_ledger(result.mechanisms, r.step_time_s, [&](const Mechanisms& m) {
      const TrainingRun run = rerun_estimate(result, profile, m);
      const sim::ReplayResult rr = simulate_in_child(run, profile.profile, profile.file, quiet);
      std::cerr << fmt::format("simulate: --by-mechanism run {:.4f} s\n", rr.step_time_s);
      return rr.step_time_s;
    });
  }

  TrainingEstimate closed = result.estimate;
  use_step_time(result.estimate, r.step_time_s);
  result.estimate.breakdown = r.breakdown;
  if (o.format == Format::kJson) {
    ordered_json j = estimate_json(result, profile.file);
    ordered_json& b = j["breakdown"];
    b["straggler_s"] = r.straggler_s;
    b["contention_s"] = r.contention_s;
    j["estimate_step_time_s"] = closed.step_time_s;
    j["critical_path"] = critical_path_json(r);
    if (ledger) j["by_mechanism"] = mechanism_ledger_json(*ledger);
    j["simulation"] = {{"mode", o.full ? "full" : "symmetric"},
                       {"replica_classes", r.replicas_simulated},
                       {"activities", r.activities},
                       {"flows", r.flows}};
    if (!o.trace.empty()) j["simulation"]["trace"] = {{"file", o.trace}, {"events", r.trace_events}};
    if (scenario) {
      const double S = r.step_time_s / baseline->step_time_s;
      ordered_json sc = {{"file", scenario->file},
                         {"seed", scenario->seed},
                         {"baseline_step_time_s", baseline->step_time_s},
                         {"slowdown", S},
                         {"waste", 1.0 - 1.0 / S},
                         {"slowed_ranks", options.perturbation.slowdowns.size()},
                         {"slowed_nodes", slowed_nodes(options.perturbation, cluster)},
                         {"links", options.perturbation.links.size()},
                         {"background_flows", options.perturbation.background.size()}};
      if (scenario->node_failure) {
        const auto& f = *scenario->node_failure;
        const sim::FailureGoodput g = sim::failure_goodput(f, r.step_time_s);
        sc["node_failure"] = {{"node", f.node},
                              {"at_s", f.at_s},
                              {"steps", f.steps},
                              {"failure_within_run", g.failure_within_run},
                              {"steps_done_before_failure", g.steps_done_before_failure},
                              {"lost_s", g.lost_s},
                              {"restart_s", g.restart_s},
                              {"checkpoint_s", g.checkpoint_s},
                              {"wall_s", g.wall_s},
                              {"goodput", g.goodput},
                              {"effective_tokens_per_s", result.estimate.tokens_per_s * g.goodput}};
      }
      j["scenario"] = sc;
    }
    std::cout << j.dump(2) << '\n';
    return;
  }
  print_estimate_table(result, profile.file, std::cout);
  std::cout << fmt::format("on the path  straggler {:.3f} s, contention {:.3f} s, variability {:.3f} s\n", r.straggler_s,
                           r.contention_s, r.variability_s);
  std::cout << fmt::format("closed form  {:.3f} s (simulated/estimate {:.3f})\n", closed.step_time_s,
                           r.step_time_s / closed.step_time_s);
  std::cout << fmt::format("critical path ({} activities)\n", r.critical_activities);
  for (const auto& c : r.critical_path) {
    if (c.seconds < 1e-4 * r.step_time_s) continue;
    std::cout << fmt::format("  {:<12} {:>9.4f} s  {:>5.1f} %  {}\n", c.cause, c.seconds, 100 * c.seconds / r.step_time_s,
                             c.detail);
  }
  if (ledger) print_mechanism_ledger(*ledger, std::cout);
  if (scenario) {
    const double S = r.step_time_s / baseline->step_time_s;
    std::cout << fmt::format("scenario     baseline {:.4f} s, slowdown {:.4f}, waste {:.2f} %\n", baseline->step_time_s, S,
                             100 * (1 - 1 / S));
    if (scenario->node_failure) {
      const sim::FailureGoodput g = sim::failure_goodput(*scenario->node_failure, r.step_time_s);
      std::cout << fmt::format("node failure goodput {:.4f} over {} steps ({:.0f} s lost, {:.0f} s restart)\n", g.goodput,
                               scenario->node_failure->steps, g.lost_s, g.restart_s);
    }
  }
}

}  // namespace

void use_step_time(TrainingEstimate& e, double step_time_s) {
  const double k = e.step_time_s / step_time_s;
  e.step_time_s = step_time_s;
  e.tokens_per_s *= k;
  e.tokens_per_s_per_gpu *= k;
  e.tflops_per_gpu *= k;
  e.mfu *= k;
  e.hfu *= k;
}

sim::ReplayResult simulate_in_child(const TrainingRun& run, const Profile& profile, const std::string& profile_file,
                                    const sim::ReplayOptions& given) {
  const CostModel costs(profile, profile_file, run.cluster);
  sim::ReplayOptions options = given;
  options.mechanisms = run.mechanisms;
  try {
    return from_wire(sim::run_in_child_process([&] {
      return to_wire(sim::replay_training(run.workload, run.estimate, costs, run.cluster, options));
    }));
  } catch (const sim::ChildProcessError& e) {
    throw std::runtime_error(std::string("simulation failed: ") + e.what());
  }
}

void register_simulate_command(CLI::App& app) {
  auto o = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "SimGrid replay of one training iteration: contention, stragglers, failures, critical path, trace");
  cmd->footer(
      "Examples:\n"
      "  clustersim simulate --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \\\n"
      "      --plan llama-3.1-405b-16k --format json\n"
      "  clustersim simulate --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \\\n"
      "      --plan llama-3.1-405b-16k-interleaved --scenario examples/stragglers.json \\\n"
      "      --trace step.json.gz --trace-ranks 0,8,128\n"
      "Results go to stdout, progress to stderr. Scenario format and outputs: docs/simulate.md.");
  add_training_input_options(*cmd, o->inputs);
  cmd->add_option("--scenario", o->scenario, "What-if scenario JSON (stragglers, links, failure, background traffic)");
  cmd->add_option("--seed", o->seed,
                  "Seed of the fleet's draws and of the scenario's choice of nodes (default: the scenario's \"seed\", "
                  "else 1); a sweep's seeds axis sets it")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  cmd->add_flag("--full", o->full, "Simulate every data-parallel replica (slower; for checks up to a few hundred GPUs)");
  cmd->add_option("--trace", o->trace, "Write a Perfetto/Chrome trace (.json or .json.gz)")->check(writable_file());
  cmd->add_option("--trace-ranks", o->trace_ranks, "Comma-separated ranks to trace (default: the simulated representatives)");
  add_format_option(*cmd, o->format);
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
