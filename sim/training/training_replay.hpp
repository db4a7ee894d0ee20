#pragma once
// SimGrid replay of one training iteration of a lowered Workload on the rail fat-tree platform
// (NetworkSimulation). Plain C++: no SimGrid here. Model: docs/simulate.md.
//
// Per pipeline stage and DP replica class (one representative replica for all replicas that
// behave alike, plus one per replica a perturbation makes different; every replica with
// `full`), the stage's representative rank runs the 1F1B or interleaved schedule on one lane:
// forward and backward chunks as compute activities priced by the estimator (compute plus the
// TP/CP/EP communication it leaves exposed), pipeline send/receive as transfers between the
// neighbouring stages' representatives, the DP gradient reduction and parameter gather as ring
// collectives over the stage's real DP group (rail 0: every rail carries the same traffic),
// the optimizer at the end. Network activities are sized so that, alone on the platform, they
// take what the CostModel prices; contention and slow links stretch them.
//
// SimGrid allows one engine per process: run each replay in a process of its own
// (child_process.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/cost_model.hpp"
#include "models/planning/step_attribution.hpp"
#include "models/planning/training_estimate.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim::sim {

// What a scenario does to the cluster, resolved to ranks and link names.
struct RankSlowdown {
  std::int64_t rank = 0;
  double factor = 1.0;        // compute takes factor times longer
  std::string cause = "straggler";  // "straggler" or "gpu_type"
};
struct LinkChange {
  std::string link;           // RailFabric::link_name, e.g. "nic_up.n3.r0"
  double bandwidth_factor = 1.0;
  double at_s = 0;
  bool failed = false;
};
struct BackgroundTraffic {
  std::int64_t src = 0, dst = 0;  // GPU ranks
  double bytes = 0;
  double start_s = 0;
};
struct ReplayPerturbation {
  std::vector<RankSlowdown> slowdowns;
  std::vector<LinkChange> links;
  std::vector<BackgroundTraffic> background;
  bool empty() const { return slowdowns.empty() && links.empty() && background.empty(); }
};

struct ReplayOptions {
  bool full = false;  // simulate every DP replica
  std::uint64_t fleet_seed = 1;  // the cluster's fleet: host and per-activity draws
  Mechanisms mechanisms;         // shared_nics does not apply: the fabric is simulated
  ReplayPerturbation perturbation;
  std::string trace_path;                 // Chrome/Perfetto trace; empty: none (.gz: gzipped)
  std::vector<std::int64_t> trace_ranks;  // empty: the simulated representatives (up to 64)
};

struct ReplayResult {
  double step_time_s = 0;
  StepBreakdown breakdown;       // from the critical path
  double straggler_s = 0;        // critical-path time owed to slowed ranks
  double contention_s = 0;       // critical-path time owed to shared or slowed links
  double variability_s = 0;      // critical-path time owed to the fleet (slow hosts, spread, jitter)
  std::vector<CriticalCause> critical_path;  // aggregated by (cause, detail), largest first
  std::int64_t critical_activities = 0;      // activities on the critical path
  std::vector<std::int64_t> slow_nodes_on_path;
  std::int64_t replicas_simulated = 0;       // DP replica classes
  std::int64_t activities = 0;
  std::int64_t flows = 0;
  std::int64_t trace_events = 0;
};

// `estimate` is estimate_training() of the same workload: its per-stage prices drive the
// compute activities. Throws NetworkFailure when a flow crosses a failed link and
// std::invalid_argument on a perturbation naming an unknown link or rank.
ReplayResult replay_training(const Workload& workload, const TrainingEstimate& estimate,
                             const CostModel& costs, const ClusterSpec& cluster,
                             const ReplayOptions& options);

}  // namespace clustersim::sim
