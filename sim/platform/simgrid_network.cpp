// SimgridNetwork: executes an ExecutionPlan with one SimGrid actor per lane. Part of the SimGrid
// adapter (the only files including SimGrid headers).
//
// A lane actor takes its activities in order; before each it suspends itself until the
// activity's dependencies are done (the activity finishing the last dependency resumes it),
// then runs the phases: all flows of a phase as host-to-host comms started together and waited
// together, then the phase's sleep. Waiting on every comm before going on keeps the comms in
// flight per actor bounded by one phase (SimGrid 3.32 removes finished activities from a list
// in O(n)).
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <stdexcept>

#include "sim/platform/rail_fabric.hpp"
#include "sim/platform/simgrid_adapter.hpp"
#include "sim/platform/simgrid_adapter_internal.hpp"

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;

namespace {

// Compressed rows: for each key, the values pushed for it, in push order.
struct Csr {
  std::vector<std::uint32_t> begin;
  std::vector<std::int32_t> values;
  void build(std::size_t keys, const std::vector<std::pair<std::int32_t, std::int32_t>>& pairs) {
    begin.assign(keys + 1, 0);
    for (const auto& [k, v] : pairs) ++begin[static_cast<std::size_t>(k) + 1];
    std::partial_sum(begin.begin(), begin.end(), begin.begin());
    values.assign(pairs.size(), 0);
    std::vector<std::uint32_t> fill(begin.begin(), begin.end() - 1);
    for (const auto& [k, v] : pairs) values[fill[static_cast<std::size_t>(k)]++] = v;
  }
  std::span<const std::int32_t> row(std::size_t k) const {
    return {values.data() + begin[k], values.data() + begin[k + 1]};
  }
};

}  // namespace

struct SimgridNetworkState {
  std::unique_ptr<sg4::Engine> engine;
  SimgridPlatform platform;

  // State of the plan being executed.
  const ExecutionPlan* plan = nullptr;
  std::vector<ActivityTiming>* timings = nullptr;
  std::vector<std::int32_t> remaining_deps;
  std::vector<char> done;
  Csr successors;  // activity -> activities depending on it
  Csr lane_queue;  // lane -> its activities in order
  std::vector<sg4::ActorPtr> lane_actor;
  std::vector<char> lane_suspended;

  sg4::Host* host(std::int32_t gpu) const { return platform.hosts[static_cast<std::size_t>(gpu)]; }

  void run_phase(const PlanPhase& phase, std::vector<sg4::CommPtr>& comms) const {
    comms.clear();
    for (std::uint32_t f = phase.flow_begin; f < phase.flow_end; ++f) {
      const PlanFlow& flow = plan->flows[f];
      comms.push_back(sg4::Comm::sendto_async(host(flow.src), host(flow.dst), flow_payload(flow.bytes)));
    }
    if (!comms.empty()) sg4::Comm::wait_all(comms);
    comms.clear();
    if (phase.delay_s > 0) sg4::this_actor::sleep_for(phase.delay_s);
  }

  void run_lane(std::int32_t lane) {
    std::vector<sg4::CommPtr> comms;
    for (std::int32_t a : lane_queue.row(static_cast<std::size_t>(lane))) {
      const auto ai = static_cast<std::size_t>(a);
      while (remaining_deps[ai] > 0) {
        lane_suspended[static_cast<std::size_t>(lane)] = 1;
        sg4::this_actor::suspend();
        lane_suspended[static_cast<std::size_t>(lane)] = 0;
      }
      const PlanActivity& act = plan->activities[ai];
      if (act.not_before_s > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(act.not_before_s);
      (*timings)[ai].start_s = sg4::Engine::get_clock();
      for (std::uint32_t p = act.phase_begin; p < act.phase_end; ++p) run_phase(plan->phases[p], comms);
      (*timings)[ai].end_s = sg4::Engine::get_clock();
      done[ai] = 1;
      for (std::int32_t s : successors.row(ai)) {
        const auto si = static_cast<std::size_t>(s);
        if (--remaining_deps[si] > 0) continue;
        const auto other = static_cast<std::size_t>(plan->activities[si].lane);
        if (lane_suspended[other]) lane_actor[other]->resume();
      }
    }
  }

  void run_background(std::vector<double>& finish) const {
    const auto& flows = plan->background_flows;
    std::vector<std::size_t> order(flows.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return plan->background_start_s[a] < plan->background_start_s[b];
    });
    std::vector<sg4::CommPtr> comms(flows.size());
    for (std::size_t i : order) {
      if (plan->background_start_s[i] > sg4::Engine::get_clock()) {
        sg4::this_actor::sleep_until(plan->background_start_s[i]);
      }
      comms[i] = sg4::Comm::sendto_async(host(flows[i].src), host(flows[i].dst), flow_payload(flows[i].bytes));
    }
    for (std::size_t i = 0; i < comms.size(); ++i) {
      comms[i]->wait();
      finish[i] = comms[i]->get_finish_time();
    }
  }

  void apply_bandwidth_changes() const {
    std::vector<BandwidthChange> later;
    for (const BandwidthChange& c : plan->bandwidth_changes) {
      if (c.at_s <= sg4::Engine::get_clock()) {
        platform.links[static_cast<std::size_t>(c.link)]->set_bandwidth(c.bandwidth_bytes_per_s);
      } else {
        later.push_back(c);
      }
    }
    if (later.empty()) return;
    std::stable_sort(later.begin(), later.end(),
                     [](const BandwidthChange& a, const BandwidthChange& b) { return a.at_s < b.at_s; });
    // A daemon: it does not keep the simulation alive once the work is done.
    sg4::Actor::create("bandwidth_changes", host(0), [this, later] {
      sg4::Actor::self()->daemonize();
      for (const BandwidthChange& c : later) {
        sg4::this_actor::sleep_until(c.at_s);
        platform.links[static_cast<std::size_t>(c.link)]->set_bandwidth(c.bandwidth_bytes_per_s);
      }
    });
  }
};

SimgridPlatform build_platform(const RailFabric& fabric, SimgridNetwork::Platform platform) {
  if (platform == SimgridNetwork::Platform::kRailZone) return build_rail_zone(fabric);
  // Every GPU on one switch: a cross-leaf network route's latency, split over the two links.
  return build_star_zone(fabric.gpu_count(), fabric.nic_bandwidth_bytes_per_s(), fabric.cross_leaf_latency_s() / 2,
                         fabric.hbm_bandwidth_bytes_per_s());
}

SimgridNetworkState* network_create(const RailFabric& fabric, SimgridNetwork::Platform platform) {
  auto state = std::make_unique<SimgridNetworkState>();
  state->engine = start_engine();
  state->platform = build_platform(fabric, platform);
  return state.release();
}

void network_destroy(SimgridNetworkState* state) { delete state; }

double network_now_s(const SimgridNetworkState*) { return sg4::Engine::get_clock(); }

void network_execute(SimgridNetworkState* state, const ExecutionPlan& plan, std::vector<ActivityTiming>& timings,
                     std::vector<double>& background_finish_s) {
  SimgridNetworkState& s = *state;
  const std::size_t n = plan.activities.size();
  s.plan = &plan;
  s.timings = &timings;
  timings.assign(n, ActivityTiming{});
  background_finish_s.assign(plan.background_flows.size(), 0.0);
  s.remaining_deps.assign(n, 0);
  s.done.assign(n, 0);
  std::vector<std::pair<std::int32_t, std::int32_t>> dep_pairs, lane_pairs;
  lane_pairs.reserve(n);
  for (std::size_t a = 0; a < n; ++a) {
    const PlanActivity& act = plan.activities[a];
    for (std::uint32_t d = act.dep_begin; d < act.dep_end; ++d) {
      dep_pairs.emplace_back(plan.deps[d], static_cast<std::int32_t>(a));
      ++s.remaining_deps[a];
    }
    lane_pairs.emplace_back(act.lane, static_cast<std::int32_t>(a));
  }
  s.successors.build(n, dep_pairs);
  s.lane_queue.build(static_cast<std::size_t>(plan.lane_count), lane_pairs);
  s.lane_actor.assign(static_cast<std::size_t>(plan.lane_count), nullptr);
  s.lane_suspended.assign(static_cast<std::size_t>(plan.lane_count), 0);

  s.apply_bandwidth_changes();
  for (std::int32_t lane = 0; lane < plan.lane_count; ++lane) {
    if (s.lane_queue.row(static_cast<std::size_t>(lane)).empty()) continue;
    s.lane_actor[static_cast<std::size_t>(lane)] =
        sg4::Actor::create("lane" + std::to_string(lane),
                           s.host(plan.lane_home_gpu[static_cast<std::size_t>(lane)]),
                           [&s, lane] { s.run_lane(lane); });
  }
  if (!plan.background_flows.empty()) {
    sg4::Actor::create("background", s.host(0), [&s, &background_finish_s] { s.run_background(background_finish_s); });
  }
  s.engine->run();
  s.lane_actor.clear();
  s.plan = nullptr;
  s.timings = nullptr;
  if (std::find(s.done.begin(), s.done.end(), 0) != s.done.end()) {
    throw std::logic_error("simulation ended with activities that never ran");
  }
}

}  // namespace clustersim::sim
