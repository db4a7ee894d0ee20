#include "sim/platform/simgrid_adapter.hpp"

#include <simgrid/s4u.hpp>
#include <xbt/config.hpp>

#include <algorithm>
#include <stdexcept>

#include "sim/platform/simgrid_adapter_internal.hpp"
#include "sim/platform/simgrid_module.hpp"

namespace clustersim::sim {

namespace sg4 = simgrid::s4u;

struct SimgridSessionState {
  std::unique_ptr<sg4::Engine> engine;
  std::vector<sg4::Host*> hosts;
};

namespace {

SimgridSessionState* session_create() {
  auto state = std::make_unique<SimgridSessionState>();
  state->engine = start_engine();
  return state.release();
}

void session_destroy(SimgridSessionState* state) { delete state; }

void session_build_star_platform(SimgridSessionState* state, const StarPlatformSpec& spec) {
  state->hosts = build_star_zone(spec.hosts, spec.link_bandwidth_bytes_per_s, spec.link_latency_s,
                                 spec.link_bandwidth_bytes_per_s)
                     .hosts;
}

std::vector<double> session_run_transfers(SimgridSessionState* state, const std::vector<Transfer>& transfers) {
  std::vector<sg4::CommPtr> comms;
  comms.reserve(transfers.size());
  for (const auto& t : transfers) {
    if (t.src < 0 || t.dst < 0 || t.src >= static_cast<std::int64_t>(state->hosts.size()) ||
        t.dst >= static_cast<std::int64_t>(state->hosts.size()) || t.src == t.dst) {
      throw std::invalid_argument("transfer between unknown or identical hosts");
    }
    auto comm = sg4::Comm::sendto_init(state->hosts[static_cast<std::size_t>(t.src)],
                                       state->hosts[static_cast<std::size_t>(t.dst)]);
    comm->set_payload_size(static_cast<std::uint64_t>(t.bytes));
    comms.push_back(comm);
  }
  // Issue each transfer at its start time: run the clock forward in start order.
  std::vector<std::size_t> order(transfers.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return transfers[a].start_s < transfers[b].start_s;
  });
  for (std::size_t i : order) {
    if (transfers[i].start_s > sg4::Engine::get_clock()) state->engine->run_until(transfers[i].start_s);
    comms[i]->start();
  }
  state->engine->run();
  std::vector<double> finish;
  finish.reserve(comms.size());
  for (const auto& c : comms) finish.push_back(c->get_finish_time());
  return finish;
}

std::string config_string(const std::string& key) { return simgrid::config::get_value<std::string>(key); }

double config_double(const std::string& key) { return simgrid::config::get_value<double>(key); }

const SimgridModuleApi kApi{session_create,  session_destroy, session_build_star_platform, session_run_transfers,
                            config_string,   config_double,   network_create,              network_destroy,
                            network_execute, network_now_s,   live_create,                 live_destroy,
                            live_add_periodic_job, live_run,  live_start_flow,             live_advance,
                            live_flows_in_flight,  live_periodic_stats};

}  // namespace

}  // namespace clustersim::sim

// The module's entry point, found by sim/platform/simgrid_loader.cpp with dlsym.
extern "C" const clustersim::sim::SimgridModuleApi* clustersim_simgrid_module_api() { return &clustersim::sim::kApi; }
