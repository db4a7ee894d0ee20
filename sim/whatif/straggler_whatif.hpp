#pragma once
// Straggler what-if analysis on a replayed per-op trace (the OSDI'25 study's method; see
// docs/straggler-traces.md). Pure C++, no SimGrid.
//
//   no-delay run: measured durations and transfer times, launch delays removed -> T_nodelay
//   ideal run:    compute-like ops at their type's mean, communication at its median, no
//                 launch delays -> T_ideal
//   S = mean(T_nodelay) / mean(T_ideal), waste = 1 - 1/S
//   attribution:  the ideal run with one group (op type, dp rank, stage, worker) given back its
//                 measured durations; entry = mean(T) / mean(T_ideal)
#include <cstdint>
#include <string>
#include <vector>

#include "sim/whatif/trace_dependency_graph.hpp"
#include "sim/whatif/trace_replay.hpp"
#include "sim/whatif/whatif_scenario.hpp"

namespace clustersim::sim {

struct WhatIfGroupSlowdown {
  std::string label;  // op type ("forward-pp-comm" merges forward send/recv), or "dp 0" etc.
  int dp_rank = -1;   // set for dp-rank and worker groups
  int stage = -1;     // set for stage and worker groups
  int rank = -1;      // set for worker groups
  double slowdown = 0;
};

struct WhatIfScenarioResult {
  std::string name;
  std::vector<double> step_time_s;
  double mean_step_time_s = 0;
  double speedup = 0;    // mean(T_nodelay) / mean(T_scenario)
  // (T_nodelay - T_scenario) / (T_nodelay - T_ideal) of the mean times, at most 1: the ideal
  // prices each op type at its mean (compute) or median (communication), so a scenario that
  // leaves faster-than-typical workers as measured can beat it; by how much is beyond_ideal_s.
  double recovered = 0;
  double beyond_ideal_s = 0;  // max(0, T_ideal - T_scenario), of the mean times
};

struct StragglerWhatIfResult {
  std::vector<std::int64_t> steps;
  std::vector<double> base_s, replayed_s, nodelay_s, ideal_s;  // per step
  double mean_base_s = 0, mean_replayed_s = 0, mean_nodelay_s = 0, mean_ideal_s = 0;
  double slowdown = 0;         // S
  double waste = 0;            // 1 - 1/S
  double launch_slowdown = 0;  // mean(T_base) / mean(T_nodelay)
  double baseline_max_relative_error = 0;  // max over steps |replayed - base| / base
  std::int64_t baseline_worst_step = 0;
  // Sorted by slowdown, largest first (ties keep group order).
  std::vector<WhatIfGroupSlowdown> by_optype, by_dp_rank, by_stage, by_worker;
  // M_S of the study: share of the slowdown removed by giving the last stage ideal durations.
  double last_stage_share = 0;
  std::vector<WhatIfScenarioResult> scenarios;
};

class StragglerWhatIf {
 public:
  StragglerWhatIf(const TraceDependencyGraph& graph, const TraceReplayLayout& layout);

  StragglerWhatIfResult analyze(const std::vector<WhatIfScenario>& scenarios);

  // Op times by slot of the ideal run (valid after analyze()).
  const std::vector<double>& ideal_start_s() const { return ideal_start_s_; }
  const std::vector<double>& ideal_end_s() const { return ideal_end_s_; }

 private:
  // Mean (compute-like types) or median (communication) per op type of the no-delay inputs.
  ReplayInputs ideal_inputs() const;
  // `into` with the slots selected by pred(dp_rank, op) taken from `from`.
  template <typename Pred>
  ReplayInputs mix(const ReplayInputs& into, const ReplayInputs& from, Pred pred) const;
  double mean_replay(const ReplayInputs& inputs, std::vector<double>* steps = nullptr);

  const TraceDependencyGraph& graph_;
  const TraceReplayLayout& layout_;
  TraceReplayer replayer_;
  ReplayInputs measured_, nodelay_, ideal_;
  std::vector<double> ideal_start_s_, ideal_end_s_;
};

// Checks that every selector of every scenario names ranks, dp ranks and stages that exist.
// Throws InputErrors naming `file` and the selector's JSON pointer.
void validate_scenarios(const std::vector<WhatIfScenario>& scenarios,
                        const TraceReplayLayout& layout, const std::string& file);

}  // namespace clustersim::sim
