#pragma once
// Flows on the simulated cluster network, started and finished as an outside event loop goes:
// the live counterpart of NetworkSimulation (which runs a DAG given in advance). The loop runs
// inside the simulation (run()), starts transfers at its current time and advances the clock
// to its own next event or to the first transfer that finishes, whichever is earlier, so
// transfers of disjoint endpoints share fabric links as max-min sharing gives. Another job's
// traffic (a training job's gradient all-reduce) can repeat beside it. Plain C++; SimGrid is
// behind SimgridLiveNetwork (simgrid_adapter.hpp). One SimGrid engine per process: run one
// LiveNetwork per process (a forked child, child_process.hpp).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "sim/platform/collective_flows.hpp"
#include "sim/platform/execution_plan.hpp"
#include "sim/platform/network_simulation.hpp"
#include "sim/platform/rail_fabric.hpp"

namespace clustersim::sim {

class SimgridLiveNetwork;

using TransferId = std::int32_t;

class LiveNetwork {
 public:
  LiveNetwork(const ClusterSpec& cluster, std::int64_t gpus, PlatformKind kind = PlatformKind::kRailFatTree);
  ~LiveNetwork();
  LiveNetwork(const LiveNetwork&) = delete;
  LiveNetwork& operator=(const LiveNetwork&) = delete;

  const RailFabric& fabric() const { return fabric_; }

  // Before run(): a ring collective over `group` (GPU ranks in ring order) repeated every
  // period_s from start_s on (the next round waits for the previous one); returns its index
  // for periodic_stats().
  std::int32_t add_periodic_ring(RingCollective kind, std::span<const std::int64_t> group, double bytes_per_rank,
                                 double start_s, double period_s);

  // Runs `driver` inside the simulation; the calls below are for the driver.
  void run(const std::function<void()>& driver);
  // Starts `flows` together at `at_s` (>= the clock; the clock moves there first when nothing is
  // in flight); the transfer finishes when its last flow does. An empty transfer is rejected.
  TransferId start(std::span<const Flow> flows, double at_s);
  // Advances to until_s or to the end of the first transfer finishing before it, whichever is
  // earlier; returns that transfer (now_s() = its end) or -1 (now_s() = until_s). until_s may be
  // infinite while transfers are in flight.
  TransferId advance(double until_s);
  bool busy() const { return transfers_in_flight_ > 0; }
  double now_s() const;

  // After run(): completed rounds of each periodic job and their mean duration.
  std::vector<PeriodicJobStats> periodic_stats() const;
  std::int64_t flows_started() const { return static_cast<std::int64_t>(flow_transfer_.size()); }

 private:
  RailFabric fabric_;
  std::unique_ptr<SimgridLiveNetwork> network_;
  std::vector<TransferId> flow_transfer_;  // flow id -> its transfer
  std::vector<std::int32_t> remaining_;    // transfer id -> flows still in flight
  std::int64_t transfers_in_flight_ = 0;
};

// The time a flow of `bytes` takes alone on its route: latency + bytes over the route's
// narrowest link.
double uncontended_flow_s(const RailFabric& fabric, std::int64_t src, std::int64_t dst, double bytes);

}  // namespace clustersim::sim
