#pragma once
// The one place that talks to SimGrid (3.32, as Debian ships it). Everything else in clustersim
// sees plain types: host and link indices, bytes, seconds. SimGrid keeps one engine per
// process, so one SimgridSession exists at a time.
//
// The implementation (simgrid_adapter.cpp, simgrid_network.cpp, simgrid_rail_zone.cpp) is a
// module loaded at run time, libclustersim_simgrid.so (simgrid_module.hpp): linking SimGrid,
// which brings ns-3, into the binary cost every command ~40 ms and ~30 MB before it started.
// The classes below forward to it (simgrid_loader.cpp); only a simulation loads it.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/platform/execution_plan.hpp"

namespace clustersim::sim {

class RailFabric;
// Engine state, defined inside the module.
struct SimgridSessionState;
struct SimgridNetworkState;
struct SimgridLiveState;

// Network model settings clustersim always uses: CM02 (pure max-min sharing, no TCP factors),
// no cross-traffic, no TCP-gamma window cap. See ../shared/notes/simgrid.md.
struct NetworkModelConfig {
  static constexpr const char* kModel = "network/model:CM02";
  static constexpr const char* kCrossTraffic = "network/crosstraffic:0";
  static constexpr const char* kTcpGamma = "network/TCP-gamma:0";
};

struct Transfer {
  std::int64_t src = 0;  // host index
  std::int64_t dst = 0;
  double bytes = 0;
  double start_s = 0;  // when the transfer is issued
};

// A flat star platform: every host hangs off one switch by its own split-duplex link. The
// fallback platform and test oracle for the rail-optimized fat-tree.
struct StarPlatformSpec {
  std::int64_t hosts = 0;
  double link_bandwidth_bytes_per_s = 0;
  double link_latency_s = 0;
};

class SimgridSession {
 public:
  // Creates the engine with clustersim's network model; SimGrid's own logging is limited to
  // warnings so stdout/stderr stay ours.
  SimgridSession();
  ~SimgridSession();
  SimgridSession(const SimgridSession&) = delete;
  SimgridSession& operator=(const SimgridSession&) = delete;

  void build_star_platform(const StarPlatformSpec& spec);

  // Runs the transfers to completion; returns each transfer's finish time in seconds.
  std::vector<double> run_transfers(const std::vector<Transfer>& transfers);

  // Configuration values SimGrid actually uses, e.g. config_string("network/model").
  std::string config_string(const std::string& key) const;
  double config_double(const std::string& key) const;

 private:
  SimgridSessionState* state_ = nullptr;
};

// The engine plus a platform of one host per GPU, executing ExecutionPlans (see
// network_simulation.hpp for the semantics). Implemented in simgrid_network.cpp; the rail zone
// in simgrid_rail_zone.cpp.
class SimgridNetwork {
 public:
  enum class Platform { kRailZone, kFlatStar };
  // The fabric must outlive this object (the routing zone asks it for routes).
  SimgridNetwork(const RailFabric& fabric, Platform platform);
  ~SimgridNetwork();
  SimgridNetwork(const SimgridNetwork&) = delete;
  SimgridNetwork& operator=(const SimgridNetwork&) = delete;

  // Runs the plan to completion; fills one timing per activity and one finish time per
  // background flow.
  void execute(const ExecutionPlan& plan, std::vector<ActivityTiming>& timings,
               std::vector<double>& background_finish_s);
  double now_s() const;

 private:
  SimgridNetworkState* state_ = nullptr;
};

// The engine plus the same platform, driven live by an outside event loop (live_network.hpp):
// the loop runs as the simulation's one actor, starts flows at the current simulated time and
// advances the clock to its own next event or the first flow to finish, whichever is earlier.
// Periodic jobs run beside it as daemon actors. Implemented in simgrid_live_network.cpp.
class SimgridLiveNetwork {
 public:
  // The fabric must outlive this object.
  SimgridLiveNetwork(const RailFabric& fabric, SimgridNetwork::Platform platform);
  ~SimgridLiveNetwork();
  SimgridLiveNetwork(const SimgridLiveNetwork&) = delete;
  SimgridLiveNetwork& operator=(const SimgridLiveNetwork&) = delete;

  // Before run().
  void add_periodic_job(const PeriodicJob& job);
  // Runs `driver` as an actor and returns when it has returned; an exception it throws is
  // rethrown here once the simulation has stopped.
  void run(const std::function<void()>& driver);
  // Inside the driver: starts a flow now; ids count up from 0.
  std::int64_t start_flow(const PlanFlow& flow);
  // Inside the driver: waits until the first flow in flight finishes (returns its id) or until
  // until_s (returns -1). until_s may be infinite only while flows are in flight.
  std::int64_t advance(double until_s);
  std::int64_t flows_in_flight() const;
  double now_s() const;
  std::vector<PeriodicJobStats> periodic_stats() const;

 private:
  SimgridLiveState* state_ = nullptr;
};

}  // namespace clustersim::sim
