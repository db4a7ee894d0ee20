#pragma once
// Shared by the adapter's translation units only (simgrid_*.cpp): the one header besides
// SimGrid's own that names SimGrid types.
#include <simgrid/s4u.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sim/platform/simgrid_adapter.hpp"

namespace clustersim::sim {

class RailFabric;

// The engine with clustersim's network model (CM02, no cross-traffic, no TCP-gamma), set before
// any zone exists; SimGrid's logging limited to warnings. Throws if an engine already exists.
std::unique_ptr<simgrid::s4u::Engine> start_engine();

// Bytes of a host-to-host comm: a zero-byte comm never starts in SimGrid 3.32; one byte costs
// the latency.
inline std::uint64_t flow_payload(double bytes) {
  return bytes < 1 ? 1 : static_cast<std::uint64_t>(bytes + 0.5);
}

struct SimgridPlatform {
  std::vector<simgrid::s4u::Host*> hosts;  // index = GPU rank
  std::vector<simgrid::s4u::Link*> links;  // index = RailFabric link id (empty for the star)
};

// A star zone (the root zone if none exists yet): one split-duplex link per host, and a
// loopback per host so that a host may send to itself.
SimgridPlatform build_star_zone(std::int64_t hosts, double bandwidth_bytes_per_s, double latency_s,
                                double loopback_bandwidth_bytes_per_s);

// The rail-optimized fat-tree as one custom routing zone (the root zone) computing routes with
// RailFabric::route; hosts and links created in O(N).
SimgridPlatform build_rail_zone(const RailFabric& fabric);

// SimgridNetwork's side of the module table (simgrid_network.cpp).
SimgridNetworkState* network_create(const RailFabric& fabric, SimgridNetwork::Platform platform);
void network_destroy(SimgridNetworkState* state);
void network_execute(SimgridNetworkState* state, const ExecutionPlan& plan, std::vector<ActivityTiming>& timings,
                     std::vector<double>& background_finish_s);
double network_now_s(const SimgridNetworkState* state);

// SimgridLiveNetwork's side of the module table (simgrid_live_network.cpp).
SimgridLiveState* live_create(const RailFabric& fabric, SimgridNetwork::Platform platform);
void live_destroy(SimgridLiveState* state);
void live_add_periodic_job(SimgridLiveState* state, const PeriodicJob& job);
void live_run(SimgridLiveState* state, const std::function<void()>& driver);
std::int64_t live_start_flow(SimgridLiveState* state, const PlanFlow& flow);
std::int64_t live_advance(SimgridLiveState* state, double until_s);
std::int64_t live_flows_in_flight(const SimgridLiveState* state);
std::vector<PeriodicJobStats> live_periodic_stats(const SimgridLiveState* state);

// The platform SimgridNetwork and SimgridLiveNetwork build: the rail zone, or the flat star with
// a cross-leaf route's latency split over its two links.
SimgridPlatform build_platform(const RailFabric& fabric, SimgridNetwork::Platform platform);

}  // namespace clustersim::sim
