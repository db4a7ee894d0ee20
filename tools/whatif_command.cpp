#include "tools/whatif_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "traces/chrome_trace_writer.hpp"
#include "tools/cli_common.hpp"
#include "models/inputs/input_error.hpp"
#include "traces/straggler_job_meta_reader.hpp"
#include "traces/straggler_trace_reader.hpp"
#include "sim/whatif/straggler_whatif.hpp"
#include "sim/whatif/trace_dependency_graph.hpp"
#include "sim/whatif/trace_replay.hpp"
#include "sim/whatif/whatif_scenario.hpp"

namespace clustersim::cli {

namespace {

using sim::StragglerWhatIfResult;
using sim::WhatIfGroupSlowdown;

// Ideal-run processes in the Perfetto trace: pid = this + rank.
constexpr std::int64_t kIdealPidOffset = 100000;
constexpr std::size_t kTableWorkers = 5;

struct WhatIfOptions {
  std::string trace;
  std::string meta;
  std::string scenario;
  std::vector<int> not_slow_ranks;
  std::vector<std::string> stage_layers;
  std::int64_t timeline_step = -1;
  std::string perfetto;
  Format format = Format::kTable;
};

struct Inputs {
  traces::StragglerTrace trace;
  traces::StragglerJobMeta meta;
};

// "STAGE:FROM:TO" -> a scenario scaling that stage's compute by TO/FROM.
sim::WhatIfScenario stage_layers_scenario(const std::string& text) {
  int stage = 0, from = 0, to = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%d:%d:%d%c", &stage, &from, &to, &extra) != 3 || stage < 0 ||
      from < 1 || to < 0) {
    throw_input_error("--stage-layers", "", fmt::format("\"{}\" is not STAGE:FROM:TO", text),
                      "e.g. 3:8:7 for stage 3 with 7 layers instead of 8");
  }
  sim::WhatIfScenario s;
  s.name = fmt::format("stage {} with {} layers instead of {}", stage, to, from);
  sim::WhatIfChange c;
  c.select.stage = stage;
  c.select.pointer = "--stage-layers";
  c.select.optype_mask = 1u << static_cast<unsigned>(traces::StragglerOpType::kForwardCompute) |
                         1u << static_cast<unsigned>(traces::StragglerOpType::kBackwardCompute);
  c.kind = sim::WhatIfChange::Kind::kScale;
  c.factor = static_cast<double>(to) / from;
  s.changes.push_back(c);
  return s;
}

std::vector<sim::WhatIfScenario> collect_scenarios(const WhatIfOptions& o,
                                                   const sim::TraceReplayLayout& layout) {
  std::vector<sim::WhatIfScenario> scenarios;
  if (!o.scenario.empty()) {
    scenarios = sim::read_whatif_scenarios(o.scenario);
    sim::validate_scenarios(scenarios, layout, o.scenario);
  }
  std::vector<sim::WhatIfScenario> from_flags;
  for (int rank : o.not_slow_ranks) {
    sim::WhatIfScenario s;
    s.name = fmt::format("rank {} not slow", rank);
    sim::WhatIfChange c;
    c.select.rank = rank;
    c.select.pointer = "--not-slow-rank";
    s.changes.push_back(c);
    from_flags.push_back(std::move(s));
  }
  for (const auto& text : o.stage_layers) from_flags.push_back(stage_layers_scenario(text));
  for (auto& s : from_flags) {
    sim::validate_scenarios({s}, layout, s.changes.front().select.pointer);
    scenarios.push_back(std::move(s));
  }
  return scenarios;
}

nlohmann::ordered_json group_json(const WhatIfGroupSlowdown& g, const char* key) {
  nlohmann::ordered_json j;
  if (std::string_view(key) == "optype") j["optype"] = g.label;
  if (std::string_view(key) == "worker") j["rank"] = g.rank;
  if (g.dp_rank >= 0) j["dp_rank"] = g.dp_rank;
  if (g.stage >= 0) j["stage"] = g.stage;
  j["slowdown"] = g.slowdown;
  return j;
}

nlohmann::ordered_json to_json(const Inputs& in, const sim::TraceDependencyGraph& graph,
                               const sim::TraceReplayLayout& layout,
                               const StragglerWhatIfResult& r) {
  const auto& m = in.meta;
  nlohmann::ordered_json j;
  j["trace"] = {{"file", in.trace.file},
                {"meta_file", m.file},
                {"trial_name", m.trial_name},
                {"ops", in.trace.ops.size()},
                {"steps", layout.step_count()},
                {"workers", layout.dp_size() * static_cast<std::size_t>(layout.pp_size())}};
  j["layout"] = {{"dp_size", m.dp_size}, {"dsp_size", m.dsp_size}, {"pp_size", m.pp_size},
                 {"tp_size", m.tp_size}, {"vpp_size", m.vpp_size}, {"world_size", m.world_size}};
  j["graph"] = {{"template_step", graph.template_step()},
                {"ops_per_pipeline", graph.op_count()},
                {"dependencies", graph.dependency_count()},
                {"communication_groups", graph.groups().size()},
                {"notes", graph.notes()}};
  j["S"] = r.slowdown;
  j["waste"] = r.waste;
  j["launch_slowdown"] = r.launch_slowdown;
  j["last_stage_share"] = r.last_stage_share;
  j["mean_step_time_s"] = {{"base", r.mean_base_s},
                           {"replayed", r.mean_replayed_s},
                           {"nodelay", r.mean_nodelay_s},
                           {"ideal", r.mean_ideal_s}};
  j["baseline"] = {{"max_relative_error", r.baseline_max_relative_error},
                   {"worst_step", r.baseline_worst_step}};
  auto steps = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < r.steps.size(); ++k) {
    steps.push_back({{"step", r.steps[k]},
                     {"base_s", r.base_s[k]},
                     {"replayed_s", r.replayed_s[k]},
                     {"nodelay_s", r.nodelay_s[k]},
                     {"ideal_s", r.ideal_s[k]},
                     {"slowdown", r.nodelay_s[k] / r.ideal_s[k]}});
  }
  j["steps"] = steps;
  nlohmann::ordered_json attribution;
  const std::pair<const char*, const std::vector<WhatIfGroupSlowdown>*> lists[] = {
      {"optype", &r.by_optype}, {"stage", &r.by_stage}, {"dp_rank", &r.by_dp_rank},
      {"worker", &r.by_worker}};
  for (const auto& [key, list] : lists) {
    auto a = nlohmann::ordered_json::array();
    for (const auto& g : *list) a.push_back(group_json(g, key));
    attribution[key] = a;
  }
  j["attribution"] = attribution;
  auto scenarios = nlohmann::ordered_json::array();
  for (const auto& s : r.scenarios) {
    scenarios.push_back({{"name", s.name},
                         {"mean_step_time_s", s.mean_step_time_s},
                         {"speedup", s.speedup},
                         {"recovered", s.recovered},
                         {"beyond_ideal_s", s.beyond_ideal_s},
                         {"step_time_s", s.step_time_s}});
  }
  j["scenarios"] = scenarios;
  return j;
}

std::string group_list(const std::vector<WhatIfGroupSlowdown>& groups, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < groups.size() && i < limit; ++i) {
    out += fmt::format("{}{} {:.4f}", i ? ", " : "", groups[i].label, groups[i].slowdown);
  }
  if (groups.size() > limit) out += fmt::format(", ... ({} more)", groups.size() - limit);
  return out;
}

void print_table(const Inputs& in, const sim::TraceDependencyGraph& graph,
                 const sim::TraceReplayLayout& layout, const StragglerWhatIfResult& r,
                 std::ostream& out) {
  const auto& m = in.meta;
  out << fmt::format("trace        {}: {} ops, {} steps, {} workers (dp {} x stage {})\n",
                     in.trace.file, in.trace.ops.size(), layout.step_count(),
                     layout.dp_size() * static_cast<std::size_t>(layout.pp_size()),
                     layout.dp_size(), layout.pp_size());
  out << fmt::format("job          {}: world {} = TP {} x CP {} x PP {} x DP {}, VPP {}\n",
                     m.trial_name, m.world_size, m.tp_size, m.dsp_size, m.pp_size, m.dp_size,
                     m.vpp_size);
  out << fmt::format("graph        {} ops per pipeline and step, {} dependencies, {} "
                     "communication groups\n",
                     graph.op_count(), graph.dependency_count(), graph.groups().size());
  for (const auto& note : graph.notes()) out << "note         " << note << '\n';
  out << fmt::format("step time    base {:.4f} s, replayed {:.4f} s (max error {:.4f} % at step "
                     "{}), no-delay {:.4f} s, ideal {:.4f} s\n",
                     r.mean_base_s, r.mean_replayed_s, 100.0 * r.baseline_max_relative_error,
                     r.baseline_worst_step, r.mean_nodelay_s, r.mean_ideal_s);
  out << fmt::format("slowdown     S = {:.4f} (waste {:.1f} %), launch slowdown {:.4f}, last-stage "
                     "share M_S = {:.3f}\n",
                     r.slowdown, 100.0 * r.waste, r.launch_slowdown, r.last_stage_share);
  out << "attribution  mean step time with one group at its measured durations / ideal; "
         "largest first\n";
  out << "  op type    " << group_list(r.by_optype, r.by_optype.size()) << '\n';
  out << "  stage      " << group_list(r.by_stage, r.by_stage.size()) << '\n';
  out << "  dp rank    " << group_list(r.by_dp_rank, kTableWorkers) << '\n';
  out << "  worker     " << group_list(r.by_worker, kTableWorkers) << '\n';
  if (!r.scenarios.empty()) {
    out << "scenario     mean step (s)  speedup  recovered  name\n";
    for (const auto& s : r.scenarios) {
      out << fmt::format("             {:>13.4f}  {:>7.4f}  {:>8.1f} %  {}{}\n", s.mean_step_time_s,
                         s.speedup, 100.0 * s.recovered, s.name,
                         s.beyond_ideal_s > 0 ? fmt::format(" (beats the ideal by {:.4f} s)", s.beyond_ideal_s) : "");
    }
    const bool beyond = std::any_of(r.scenarios.begin(), r.scenarios.end(),
                                    [](const auto& s) { return s.beyond_ideal_s > 0; });
    if (beyond) {
      out << "note         a scenario can beat the ideal: the ideal prices each op type at its mean (compute) or\n"
             "             median (communication), and the workers a scenario leaves as measured may be faster\n";
    }
  }
  out << "step         base (s)  replayed (s)  no-delay (s)  ideal (s)       S\n";
  for (std::size_t k = 0; k < r.steps.size(); ++k) {
    out << fmt::format("{:>12}  {:>8.4f}  {:>12.4f}  {:>12.4f}  {:>9.4f}  {:>6.4f}\n", r.steps[k],
                       r.base_s[k], r.replayed_s[k], r.nodelay_s[k], r.ideal_s[k],
                       r.nodelay_s[k] / r.ideal_s[k]);
  }
}

// Actual (recorded) and ideal (replayed) timelines of one step, pid = rank, tid = stream.
void write_perfetto(const WhatIfOptions& o, const sim::TraceDependencyGraph& graph,
                    const sim::TraceReplayLayout& layout, const sim::StragglerWhatIf& whatif,
                    std::size_t step_index) {
  traces::ChromeTraceWriter w;
  const std::size_t n = graph.op_count();
  const std::int64_t step = layout.steps()[step_index];
  for (std::size_t d = 0; d < layout.dp_size(); ++d) {
    for (int stage = 0; stage < layout.pp_size(); ++stage) {
      const std::int64_t rank = layout.rank(d, stage);
      const std::string who = fmt::format("rank {} (dp_rank {}, stage {})", rank, d, stage);
      w.name_process(rank, fmt::format("actual step {}: {}", step, who));
      w.name_process(kIdealPidOffset + rank, fmt::format("ideal: {}", who));
      for (int t = 0; t < sim::kTraceStreamCount; ++t) {
        const std::string name(sim::stream_name(static_cast<sim::TraceStream>(t)));
        w.name_thread(rank, t, name);
        w.name_thread(kIdealPidOffset + rank, t, name);
      }
    }
    for (std::size_t op = 0; op < n; ++op) {
      const auto& g = graph.op(op);
      const std::size_t s = layout.slot(step_index, d, op);
      const std::int64_t rank = layout.rank(d, g.stage);
      std::map<std::string, std::string> args{{"seq_id", std::to_string(g.seq_id)}};
      if (g.mb_id >= 0) args["microbatch"] = std::to_string(g.mb_id);
      const std::string name(traces::op_type_name(g.optype));
      const auto tid = static_cast<std::int64_t>(g.stream);
      w.add_span({rank, tid, name, "actual", layout.recorded_start_s()[s],
                  layout.recorded_duration_s()[s], args});
      w.add_span({kIdealPidOffset + rank, tid, name, "ideal", whatif.ideal_start_s()[s],
                  whatif.ideal_end_s()[s] - whatif.ideal_start_s()[s], args});
    }
  }
  std::ofstream out(o.perfetto, std::ios::binary);
  if (!out) throw_input_error("--perfetto", "", fmt::format("cannot write {}", o.perfetto), "");
  w.write(out);
}

std::size_t timeline_step_index(const WhatIfOptions& o, const sim::TraceReplayLayout& layout) {
  const auto& steps = layout.steps();
  if (o.timeline_step < 0) {  // the slowest recorded step
    const auto& base = layout.base_step_time_s();
    return static_cast<std::size_t>(std::max_element(base.begin(), base.end()) - base.begin());
  }
  auto at = std::find(steps.begin(), steps.end(), o.timeline_step);
  if (at == steps.end()) {
    throw_input_error("--timeline-step", "",
                      fmt::format("step {} is not in the trace", o.timeline_step),
                      fmt::format("steps in the trace: {}", fmt::join(steps, ", ")));
  }
  return static_cast<std::size_t>(at - steps.begin());
}

void run(const WhatIfOptions& o) {
  if (o.timeline_step >= 0 && o.perfetto.empty()) {
    throw UsageError("--timeline-step needs --perfetto FILE");
  }
  Inputs in{traces::read_straggler_trace(o.trace), traces::read_straggler_job_meta(o.meta)};
  const auto graph = sim::TraceDependencyGraph::build(in.trace, in.meta);
  const auto layout = sim::TraceReplayLayout::build(in.trace, in.meta, graph);
  const auto scenarios = collect_scenarios(o, layout);
  const std::size_t timeline_step = o.perfetto.empty() ? 0 : timeline_step_index(o, layout);
  sim::StragglerWhatIf whatif(graph, layout);
  const StragglerWhatIfResult result = whatif.analyze(scenarios);
  if (!o.perfetto.empty()) write_perfetto(o, graph, layout, whatif, timeline_step);
  if (o.format == Format::kJson) {
    std::cout << to_json(in, graph, layout, result).dump(2) << '\n';
  } else {
    print_table(in, graph, layout, result, std::cout);
  }
}

}  // namespace

void register_whatif_command(CLI::App& app) {
  auto options = std::make_shared<WhatIfOptions>();
  CLI::App* cmd = app.add_subcommand(
      "whatif",
      "Straggler what-if on a per-op training trace: replay it, compute the slowdown S against "
      "an ideal run without stragglers, and attribute it to op types, stages and workers");
  cmd->footer(
      "Examples:\n"
      "  clustersim whatif --trace ../shared/reference/straggler-traces/trace-AR.csv.gz \\\n"
      "      --meta ../shared/reference/straggler-traces/meta-AR.yaml\n"
      "  clustersim whatif --trace ../shared/reference/straggler-traces/trace-ST.csv \\\n"
      "      --meta ../shared/reference/straggler-traces/meta-ST.yaml --format json \\\n"
      "      --perfetto st-step23.json --timeline-step 23 --stage-layers 3:8:7\n"
      "  clustersim whatif --trace job.csv.gz --meta job.json --scenario scenarios.json   # synopsis: your job's files\n"
      "(../shared/reference/straggler-traces: the traces published with the OSDI'25 straggler study.)\n"
      "Format of the trace, metadata and scenario files: docs/straggler-traces.md");
  cmd->add_option("--trace", options->trace, "Per-op trace CSV, plain or gzipped (.csv.gz)")
      ->required();
  cmd->add_option("--meta", options->meta, "Job metadata: flat key: value YAML, or JSON")
      ->required();
  cmd->add_option("--scenario", options->scenario, "JSON file of what-if scenarios");
  cmd->add_option("--not-slow-rank", options->not_slow_ranks,
                  "Scenario: this rank's ops take their ideal durations (repeatable)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--stage-layers", options->stage_layers,
                  "Scenario STAGE:FROM:TO: that stage's compute scaled by TO/FROM layers "
                  "(repeatable)");
  cmd->add_option("--perfetto", options->perfetto,
                  "Write actual vs ideal timelines of one step as a Perfetto/Chrome trace")
      ->check(writable_file());
  cmd->add_option("--timeline-step", options->timeline_step,
                  "Step for --perfetto (default: the slowest recorded step)")
      ->check(CLI::NonNegativeNumber);
  add_format_option(*cmd, options->format);
  cmd->callback([options] { run(*options); });
}

}  // namespace clustersim::cli
