#pragma once
// The SimGrid adapter as a run-time module: libclustersim_simgrid.so exports one function,
// kSimgridModuleEntry, returning this table; simgrid_loader.cpp opens the module on first use
// and SimgridSession / SimgridNetwork forward to the table. No SimGrid header here.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/platform/execution_plan.hpp"
#include "sim/platform/simgrid_adapter.hpp"

namespace clustersim::sim {

struct SimgridModuleApi {
  SimgridSessionState* (*session_create)();
  void (*session_destroy)(SimgridSessionState*);
  void (*session_build_star_platform)(SimgridSessionState*, const StarPlatformSpec&);
  std::vector<double> (*session_run_transfers)(SimgridSessionState*, const std::vector<Transfer>&);
  std::string (*config_string)(const std::string& key);
  double (*config_double)(const std::string& key);
  SimgridNetworkState* (*network_create)(const RailFabric&, SimgridNetwork::Platform);
  void (*network_destroy)(SimgridNetworkState*);
  void (*network_execute)(SimgridNetworkState*, const ExecutionPlan&, std::vector<ActivityTiming>&,
                          std::vector<double>&);
  double (*network_now_s)(const SimgridNetworkState*);
  SimgridLiveState* (*live_create)(const RailFabric&, SimgridNetwork::Platform);
  void (*live_destroy)(SimgridLiveState*);
  void (*live_add_periodic_job)(SimgridLiveState*, const PeriodicJob&);
  void (*live_run)(SimgridLiveState*, const std::function<void()>&);
  std::int64_t (*live_start_flow)(SimgridLiveState*, const PlanFlow&);
  std::int64_t (*live_advance)(SimgridLiveState*, double until_s);
  std::int64_t (*live_flows_in_flight)(const SimgridLiveState*);
  std::vector<PeriodicJobStats> (*live_periodic_stats)(const SimgridLiveState*);
};

// extern "C" in the module, so dlsym finds it by this name.
inline constexpr const char* kSimgridModuleEntry = "clustersim_simgrid_module_api";

// The module's table, loaded on first use: from beside the running executable, else from where
// the build put it. Throws std::runtime_error naming both places when neither loads.
const SimgridModuleApi& simgrid_module();

}  // namespace clustersim::sim
