// SimgridLiveNetwork: the platform driven live by an outside event loop. Part of the SimGrid
// adapter (the only files including SimGrid headers).
//
// The driver (e.g. the serving engine's loop) runs as the one non-daemon actor. It starts
// host-to-host comms at the current time and, instead of jumping to its own next event, asks to
// advance: Comm::wait_any_for over the comms in flight with the time left to that event as the
// timeout, so the clock stops at the first comm to finish if that comes first. Flows of disjoint
// endpoints therefore share fabric links exactly as max-min sharing gives while the driver's own
// events stay where it put them. Periodic jobs (another job's traffic) are daemon actors: they
// run as long as the driver does. In flight stays small (the driver's transfers), so the O(n)
// removal of finished activities in 3.32 does not bite.
#include <simgrid/s4u.hpp>

#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>

#include "sim/platform/rail_fabric.hpp"
#include "sim/platform/simgrid_adapter.hpp"
#include "sim/platform/simgrid_adapter_internal.hpp"

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;

struct SimgridLiveState {
  std::unique_ptr<sg4::Engine> engine;
  SimgridPlatform platform;
  std::vector<PeriodicJob> jobs;
  std::vector<PeriodicJobStats> stats;
  std::vector<std::vector<sg4::CommPtr>> job_comms;  // each job's comms of its current phase
  std::vector<sg4::CommPtr> in_flight;
  std::vector<std::int64_t> in_flight_id;  // parallel to in_flight
  std::int64_t next_id = 0;
  bool running = false;

  sg4::Host* host(std::int32_t gpu) const { return platform.hosts[static_cast<std::size_t>(gpu)]; }

  void run_job(std::size_t j) {
    const PeriodicJob& job = jobs[j];
    // Held by the state, not the actor: a daemon is killed mid-phase when the driver ends, and
    // its comms are cancelled first (cancel_unfinished) rather than freed while in flight.
    std::vector<sg4::CommPtr>& comms = job_comms[j];
    for (std::int64_t round = 0;; ++round) {
      const double at = job.start_s + static_cast<double>(round) * job.period_s;
      if (at > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(at);
      const double begin = sg4::Engine::get_clock();
      for (const PlanPhase& phase : job.phases) {
        comms.clear();
        for (std::uint32_t f = phase.flow_begin; f < phase.flow_end; ++f) {
          const PlanFlow& flow = job.flows[f];
          comms.push_back(sg4::Comm::sendto_async(host(flow.src), host(flow.dst), flow_payload(flow.bytes)));
        }
        if (!comms.empty()) sg4::Comm::wait_all(comms);
        if (phase.delay_s > 0) sg4::this_actor::sleep_for(phase.delay_s);
      }
      stats[j].rounds++;
      stats[j].round_s_sum += sg4::Engine::get_clock() - begin;
      if (!(job.period_s > 0)) break;
    }
  }

  // Comms still in flight when the driver is done (the periodic jobs', the driver's own after an
  // error): cancelled, so that freeing them later is not freeing a running comm.
  void cancel_unfinished() {
    auto cancel = [](std::vector<sg4::CommPtr>& comms) {
      for (auto& c : comms) {
        if (c->get_state() == sg4::Activity::State::STARTED) c->cancel();
      }
    };
    for (auto& comms : job_comms) cancel(comms);
    cancel(in_flight);
  }
};

SimgridLiveState* live_create(const RailFabric& fabric, SimgridNetwork::Platform platform) {
  auto state = std::make_unique<SimgridLiveState>();
  state->engine = start_engine();
  state->platform = build_platform(fabric, platform);
  return state.release();
}

void live_destroy(SimgridLiveState* state) { delete state; }

void live_add_periodic_job(SimgridLiveState* state, const PeriodicJob& job) {
  if (state->running) throw std::logic_error("periodic jobs are added before the simulation runs");
  state->jobs.push_back(job);
  state->stats.emplace_back();
  state->job_comms.emplace_back();
}

void live_run(SimgridLiveState* state, const std::function<void()>& driver) {
  SimgridLiveState& s = *state;
  s.running = true;
  std::exception_ptr error;
  for (std::size_t j = 0; j < s.jobs.size(); ++j) {
    sg4::Actor::create("periodic" + std::to_string(j), s.host(0), [&s, j] {
      sg4::Actor::self()->daemonize();
      try {
        s.run_job(j);
      } catch (const simgrid::NetworkFailureException&) {
        // Its comms were cancelled: the driver is done.
      } catch (const simgrid::CancelException&) {
      }
    });
  }
  sg4::Actor::create("driver", s.host(0), [&s, &driver, &error] {
    try {
      driver();
    } catch (...) {
      error = std::current_exception();
    }
    s.cancel_unfinished();
  });
  s.engine->run();
  s.running = false;
  if (error) std::rethrow_exception(error);
}

std::int64_t live_start_flow(SimgridLiveState* state, const PlanFlow& flow) {
  SimgridLiveState& s = *state;
  s.in_flight.push_back(sg4::Comm::sendto_async(s.host(flow.src), s.host(flow.dst), flow_payload(flow.bytes)));
  s.in_flight_id.push_back(s.next_id);
  return s.next_id++;
}

std::int64_t live_advance(SimgridLiveState* state, double until_s) {
  SimgridLiveState& s = *state;
  const double now = sg4::Engine::get_clock();
  if (s.in_flight.empty()) {
    if (!std::isfinite(until_s)) throw std::logic_error("advancing without flows in flight needs a finite time");
    if (until_s > now) sg4::this_actor::sleep_until(until_s);
    return -1;
  }
  const double timeout = std::isfinite(until_s) ? std::max(0.0, until_s - now) : -1.0;
  const ssize_t i = sg4::Comm::wait_any_for(s.in_flight, timeout);
  if (i < 0) return -1;
  const auto k = static_cast<std::size_t>(i);
  const std::int64_t id = s.in_flight_id[k];
  // Order-preserving removal: the comms in flight stay in start order, so that of several
  // finishing at the same instant the earliest started is reported first.
  s.in_flight.erase(s.in_flight.begin() + static_cast<std::ptrdiff_t>(k));
  s.in_flight_id.erase(s.in_flight_id.begin() + static_cast<std::ptrdiff_t>(k));
  return id;
}

std::int64_t live_flows_in_flight(const SimgridLiveState* state) {
  return static_cast<std::int64_t>(state->in_flight.size());
}

std::vector<PeriodicJobStats> live_periodic_stats(const SimgridLiveState* state) { return state->stats; }

}  // namespace clustersim::sim
