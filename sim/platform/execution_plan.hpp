#pragma once
// What NetworkSimulation hands to the SimGrid adapter: flat arrays of plain structs, addressed
// by index. An activity runs on a lane (one SimGrid actor, executing its activities in order),
// starts when its dependencies have finished, and runs its phases one after the other; a phase
// starts all its flows at once, waits for all of them, then sleeps delay_s.
#include <cstdint>
#include <vector>

namespace clustersim::sim {

struct PlanFlow {
  std::int32_t src = 0;  // GPU (host) index
  std::int32_t dst = 0;
  double bytes = 0;
};

struct PlanPhase {
  std::uint32_t flow_begin = 0, flow_end = 0;
  double delay_s = 0;
};

struct PlanActivity {
  std::int32_t lane = 0;
  std::uint32_t phase_begin = 0, phase_end = 0;
  std::uint32_t dep_begin = 0, dep_end = 0;  // into ExecutionPlan::deps
  double not_before_s = 0;
};

// A change of one link's bandwidth at a simulated time (a slow or recovered link).
struct BandwidthChange {
  std::int32_t link = 0;  // RailFabric link id
  double bandwidth_bytes_per_s = 0;
  double at_s = 0;
};

struct ExecutionPlan {
  std::int32_t lane_count = 0;
  std::vector<std::int32_t> lane_home_gpu;  // where each lane's actor lives
  std::vector<PlanActivity> activities;
  std::vector<PlanPhase> phases;
  std::vector<PlanFlow> flows;
  std::vector<std::int32_t> deps;  // activity indices of this plan; acyclic together with lane order
  // Traffic that belongs to nobody's DAG (another job): started at its time, never waited on
  // by an activity.
  std::vector<PlanFlow> background_flows;
  std::vector<double> background_start_s;
  std::vector<BandwidthChange> bandwidth_changes;
};

// Traffic of another job that repeats, e.g. a training job's gradient all-reduce: its phases
// run one after another (as an activity's do), the whole round started every period_s from
// start_s on, or as soon as the previous round ends when that is later.
struct PeriodicJob {
  std::vector<PlanPhase> phases;
  std::vector<PlanFlow> flows;
  double start_s = 0, period_s = 0;
};

struct PeriodicJobStats {
  std::int64_t rounds = 0;  // rounds completed
  double round_s_sum = 0;   // their durations, summed
};

struct ActivityTiming {
  double start_s = 0;  // when the activity left its lane's queue (dependencies met)
  double end_s = 0;
};

}  // namespace clustersim::sim
