// SimgridSession and SimgridNetwork on this side of the module boundary: each call forwards to
// the table of libclustersim_simgrid.so (simgrid_module.hpp), opened on first use. No SimGrid
// header here; the process maps SimGrid (and ns-3 behind it) only once something simulates.
#include <stdexcept>
#include <string>

#include "sim/platform/simgrid_adapter.hpp"
#include "sim/platform/module_loader.hpp"
#include "sim/platform/simgrid_module.hpp"

namespace clustersim::sim {

namespace {

const SimgridModuleApi& load_module() {
  try {
    using Entry = const SimgridModuleApi* (*)();
    // Opened once and never closed: SimGrid's engine and its exit handlers live in it.
    return *reinterpret_cast<Entry>(
        open_module_entry(CLUSTERSIM_SIMGRID_MODULE_NAME, CLUSTERSIM_SIMGRID_MODULE_PATH, kSimgridModuleEntry))();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("cannot load the SimGrid module (build the clustersim_simgrid target; it is "
                                         "placed beside clustersim): ") + e.what());
  }
}

}  // namespace

const SimgridModuleApi& simgrid_module() {
  static const SimgridModuleApi& api = load_module();
  return api;
}

SimgridSession::SimgridSession() : state_(simgrid_module().session_create()) {}
SimgridSession::~SimgridSession() { simgrid_module().session_destroy(state_); }

void SimgridSession::build_star_platform(const StarPlatformSpec& spec) {
  simgrid_module().session_build_star_platform(state_, spec);
}

std::vector<double> SimgridSession::run_transfers(const std::vector<Transfer>& transfers) {
  return simgrid_module().session_run_transfers(state_, transfers);
}

std::string SimgridSession::config_string(const std::string& key) const { return simgrid_module().config_string(key); }
double SimgridSession::config_double(const std::string& key) const { return simgrid_module().config_double(key); }

SimgridNetwork::SimgridNetwork(const RailFabric& fabric, Platform platform)
    : state_(simgrid_module().network_create(fabric, platform)) {}
SimgridNetwork::~SimgridNetwork() { simgrid_module().network_destroy(state_); }

void SimgridNetwork::execute(const ExecutionPlan& plan, std::vector<ActivityTiming>& timings,
                             std::vector<double>& background_finish_s) {
  simgrid_module().network_execute(state_, plan, timings, background_finish_s);
}

double SimgridNetwork::now_s() const { return simgrid_module().network_now_s(state_); }

SimgridLiveNetwork::SimgridLiveNetwork(const RailFabric& fabric, SimgridNetwork::Platform platform)
    : state_(simgrid_module().live_create(fabric, platform)) {}
SimgridLiveNetwork::~SimgridLiveNetwork() { simgrid_module().live_destroy(state_); }

void SimgridLiveNetwork::add_periodic_job(const PeriodicJob& job) { simgrid_module().live_add_periodic_job(state_, job); }
void SimgridLiveNetwork::run(const std::function<void()>& driver) { simgrid_module().live_run(state_, driver); }
std::int64_t SimgridLiveNetwork::start_flow(const PlanFlow& flow) { return simgrid_module().live_start_flow(state_, flow); }
std::int64_t SimgridLiveNetwork::advance(double until_s) { return simgrid_module().live_advance(state_, until_s); }
std::int64_t SimgridLiveNetwork::flows_in_flight() const { return simgrid_module().live_flows_in_flight(state_); }
// The clock is the engine's, the same for every session of the process.
double SimgridLiveNetwork::now_s() const { return simgrid_module().network_now_s(nullptr); }
std::vector<PeriodicJobStats> SimgridLiveNetwork::periodic_stats() const {
  return simgrid_module().live_periodic_stats(state_);
}

}  // namespace clustersim::sim
