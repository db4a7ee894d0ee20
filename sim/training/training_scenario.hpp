#pragma once
// What-if scenarios for `clustersim simulate --scenario S.json`: stragglers, nodes with another
// GPU type, slow or failed links, another job's traffic, and a node failure with restart from
// checkpoint. Read strictly (every error with its JSON pointer), then resolved with the seed to
// ranks and link names for the replay. Format: docs/simulate.md.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "sim/training/training_replay.hpp"

namespace clustersim::sim {

struct SlowdownDraw {  // a fixed factor, or drawn per node
  enum class Kind { kFixed, kUniform, kLognormal };
  Kind kind = Kind::kFixed;
  double factor = 1.0;          // kFixed
  double min = 1.0, max = 1.0;  // kUniform
  double median = 1.0, sigma = 0.0;  // kLognormal (clamped to >= 1)
};

struct StragglerSpec {
  std::vector<std::int64_t> ranks;
  std::vector<std::int64_t> nodes;
  double fraction_of_nodes = 0;  // drawn with the seed
  SlowdownDraw slowdown;
  std::string pointer;
};

struct GpuTypeSpec {
  std::vector<std::int64_t> nodes;
  double slowdown = 1.0;  // base peak / other peak (16-bit dense FLOP/s)
  std::string gpu_name;
};

struct NodeFailureSpec {
  std::int64_t node = 0;
  double at_s = 0;                        // wall time into the run
  std::int64_t steps = 0;                 // length of the run, in steps
  std::int64_t checkpoint_interval_steps = 0;
  double checkpoint_write_s = 0;          // each checkpoint stalls training this long
  double restart_s = 0;                   // detect, replace the node, reload, warm up
};

struct TrainingScenario {
  std::string file;
  std::uint64_t seed = 0;
  std::vector<StragglerSpec> stragglers;
  std::vector<GpuTypeSpec> gpu_types;
  std::vector<LinkChange> links;
  std::vector<BackgroundTraffic> background;
  std::optional<NodeFailureSpec> node_failure;
};

// Reads and checks a scenario against the cluster and world size (ranks, nodes, link names);
// throws InputErrors listing every problem with its JSON pointer.
TrainingScenario read_training_scenario(const std::string& path, const ClusterSpec& cluster, std::int64_t world);
TrainingScenario parse_training_scenario(const nlohmann::json& document, const std::string& file,
                                         const ClusterSpec& cluster, std::int64_t world);

// The scenario as the replay sees it; nodes drawn with the seed (same seed, same nodes).
ReplayPerturbation resolve_scenario(const TrainingScenario& scenario, const ClusterSpec& cluster, std::int64_t world);

// Goodput of a run of `steps` steps with one node failure, in closed form over the simulated
// step time: see docs/simulate.md.
struct FailureGoodput {
  double step_time_s = 0;
  double steps_done_before_failure = 0;
  double lost_s = 0;          // work since the last checkpoint, redone
  double restart_s = 0;
  double checkpoint_s = 0;    // total checkpoint writes
  double wall_s = 0;          // run time with the failure
  double goodput = 1;         // useful step time / wall time
  bool failure_within_run = false;
};
FailureGoodput failure_goodput(const NodeFailureSpec& failure, double step_time_s);

}  // namespace clustersim::sim
