#pragma once
// Communication primitives on a simulated cluster network, for a replay engine to drive.
// Plain C++; the SimGrid engine lives behind SimgridNetwork (simgrid_adapter.hpp).
//
// The caller builds a DAG of activities, each on a lane, then calls run():
//   - a lane is one SimGrid actor executing its activities in the order they were added (a
//     CUDA-stream-like queue); use one lane per stream per symmetry class (e.g. per node or TP
//     group and stream), not per GPU: fewer actors simulate faster. A lane has at most one
//     activity in flight, which bounds the comms in flight per actor.
//   - an activity starts when its lane reaches it, all its dependencies have finished and the
//     clock has reached its not_before time. Dependencies given when adding an activity are
//     activities added earlier; add_dependency() wires any other pair (cycles are rejected).
//   - run() simulates everything added since the previous run() and returns when it is done;
//     timing() then gives each activity's start and end. The clock carries over between runs.
// SimGrid allows one engine per process, so one NetworkSimulation exists at a time.
// Model and hooks: docs/simulation-platform.md.
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "sim/platform/collective_flows.hpp"
#include "sim/platform/execution_plan.hpp"
#include "sim/platform/rail_fabric.hpp"

namespace clustersim::sim {

class SimgridNetwork;

enum class PlatformKind {
  kRailFatTree,  // the custom routing zone over RailFabric
  kFlatStar,     // every GPU on one switch by one NIC-speed link (fallback and test oracle)
};

using LaneId = std::int32_t;
using ActivityId = std::int32_t;

struct Flow {
  std::int64_t src = 0;  // GPU ranks
  std::int64_t dst = 0;
  double bytes = 0;
};

// A flow whose route crosses a failed link: thrown by run() before anything is simulated.
class NetworkFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class NetworkSimulation {
 public:
  // Builds the engine and the platform of `gpus` GPUs of `cluster` (all ranks 0..gpus-1).
  // `ecmp_seed` draws the fabric's ECMP hash when the cluster routes with ECMP.
  NetworkSimulation(const ClusterSpec& cluster, std::int64_t gpus,
                    PlatformKind kind = PlatformKind::kRailFatTree, std::uint64_t ecmp_seed = 0);
  ~NetworkSimulation();
  NetworkSimulation(const NetworkSimulation&) = delete;
  NetworkSimulation& operator=(const NetworkSimulation&) = delete;

  const RailFabric& fabric() const { return fabric_; }
  PlatformKind platform_kind() const { return kind_; }

  // A lane whose actor lives on `home_gpu` (only a label: flows name their own endpoints).
  LaneId add_lane(std::int64_t home_gpu = 0);

  // --- activities ---------------------------------------------------------------------------
  ActivityId add_transfer(LaneId lane, std::int64_t src, std::int64_t dst, double bytes,
                          std::span<const ActivityId> deps = {});
  // Flows started together; the activity ends `then_sleep_s` after the last one finishes.
  ActivityId add_flows(LaneId lane, std::span<const Flow> flows, double then_sleep_s = 0,
                       std::span<const ActivityId> deps = {});
  // A ring collective over `group` (GPU ranks in ring order); see collective_flows.hpp. A group
  // of one rank costs nothing.
  ActivityId add_ring_collective(LaneId lane, RingCollective kind, std::span<const std::int64_t> group,
                                 double bytes_per_rank, std::span<const ActivityId> deps = {},
                                 RingEncoding encoding = RingEncoding::kAggregated);
  // All-to-all, `bytes_per_rank` sent by each rank in total (S/G to each peer), as node-pair
  // aggregated flows.
  ActivityId add_all_to_all(LaneId lane, std::span<const std::int64_t> group, double bytes_per_rank,
                            std::span<const ActivityId> deps = {});
  // `rank` busy for `seconds` (times the rank's slowdown factor at the time it is added).
  ActivityId add_compute(LaneId lane, std::int64_t rank, double seconds,
                         std::span<const ActivityId> deps = {});
  // Waits `seconds` (e.g. a latency or a host-side gap); a zero delay is a join point.
  ActivityId add_delay(LaneId lane, double seconds, std::span<const ActivityId> deps = {});
  // The activity does not start before simulated time t_s.
  void set_not_before(ActivityId activity, double t_s);
  // `after` (not yet run) waits for `before` (any activity, also one added later, e.g. a
  // backward pass waiting on the next stage's send). run() rejects cycles, counting each lane's
  // order as dependencies, with std::invalid_argument.
  void add_dependency(ActivityId before, ActivityId after);

  // --- perturbation hooks (rail fat-tree platform only) ----------------------------------------
  // Multiplies the link's bandwidth by `factor` (> 0) from simulated time at_s on; names as in
  // RailFabric::link_name, e.g. "nic_up.n3.r0", "leaf_up.r0.l1". Throws std::invalid_argument
  // for an unknown name.
  void scale_link_bandwidth(std::string_view link_name, double factor, double at_s = 0);
  // The link carries nothing from now on: run() throws NetworkFailure naming the link and the
  // first activity whose flow would cross it (no rerouting; see the docs).
  void fail_link(std::string_view link_name);
  // Compute added afterwards on `rank` takes `factor` times longer (a straggler).
  void set_rank_slowdown(std::int64_t rank, double factor);
  // Another job's flow: starts at start_s, shares links, blocks no activity.
  void add_background_flow(const Flow& flow, double start_s);

  // --- running and results ------------------------------------------------------------------
  void run();
  double now_s() const;
  std::int64_t activity_count() const { return static_cast<std::int64_t>(activities_.size()); }
  ActivityTiming timing(ActivityId activity) const;
  std::span<const ActivityTiming> timings() const { return timings_; }
  // Finish time of each background flow, in the order added (NaN until simulated).
  std::span<const double> background_finish_s() const { return background_finish_; }
  // Bytes each fabric link carried in all runs so far, indexed by link id (rail fat-tree only;
  // empty for the star). Utilisation over a window is bytes / (bandwidth * window).
  std::span<const double> link_bytes() const { return link_bytes_; }
  double link_utilisation(std::int32_t link_id, double window_s) const;
  // How many flows the last run() issued (activities and background).
  std::int64_t flows_simulated() const { return flows_simulated_; }

 private:
  struct Activity {
    LaneId lane = 0;
    std::uint32_t phase_begin = 0, phase_end = 0;  // into phases_
    std::uint32_t dep_begin = 0, dep_end = 0;      // into deps_
    double not_before_s = 0;
  };
  // Records an activity whose phases (and flows) were appended from phase_begin (flow_begin) on;
  // on bad lane or dependencies removes them again and throws std::invalid_argument.
  ActivityId push_activity(LaneId lane, std::size_t phase_begin, std::size_t flow_begin,
                           std::span<const ActivityId> deps);
  void check_rank(std::int64_t rank) const;
  void check_failed_links(const ExecutionPlan& plan) const;
  void fill_plan_deps(ExecutionPlan& plan) const;
  void count_link_bytes(const std::vector<PlanFlow>& flows);
  double hop_latency_s(std::span<const std::int64_t> group) const;

  RailFabric fabric_;
  PlatformKind kind_;
  std::unique_ptr<SimgridNetwork> network_;
  std::vector<std::int32_t> lane_home_;
  std::vector<Activity> activities_;
  std::vector<PlanPhase> phases_;
  std::vector<PlanFlow> flows_;
  std::vector<ActivityId> deps_;
  std::vector<std::pair<ActivityId, ActivityId>> extra_deps_;  // (before, after), from add_dependency
  std::vector<ActivityTiming> timings_;
  ActivityId first_pending_ = 0;  // activities before this one have run
  std::size_t first_pending_background_ = 0;
  std::vector<PlanFlow> background_;
  std::vector<double> background_start_;
  std::vector<double> background_finish_;
  std::vector<BandwidthChange> pending_changes_;
  std::vector<double> link_scale_;       // current factor per link (1 = nominal)
  std::vector<std::int32_t> failed_links_;
  std::vector<double> rank_slowdown_;
  std::vector<double> link_bytes_;
  std::int64_t flows_simulated_ = 0;
};

}  // namespace clustersim::sim
