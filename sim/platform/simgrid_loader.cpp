// SimgridSession and SimgridNetwork on this side of the module boundary: each call forwards to
// the table of libclustersim_simgrid.so (simgrid_module.hpp), opened on first use. No SimGrid
// header here; the process maps SimGrid (and ns-3 behind it) only once something simulates.
#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "sim/platform/simgrid_adapter.hpp"
#include "sim/platform/simgrid_module.hpp"

namespace clustersim::sim {

namespace {

// Beside the running executable first (an installed clustersim), then where the build put it
// (test binaries and bench_platform live in other folders of the build tree).
const SimgridModuleApi& load_module() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string errors;
  for (const std::filesystem::path& path :
       {self.parent_path() / CLUSTERSIM_SIMGRID_MODULE_NAME, std::filesystem::path(CLUSTERSIM_SIMGRID_MODULE_PATH)}) {
    if (ec && path.is_relative()) continue;
    // Opened once and never closed: SimGrid's engine and its exit handlers live in it.
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (module == nullptr) {
      const char* why = dlerror();
      errors += "\n  " + path.string() + ": " + (why ? why : "unknown dlopen error");
      continue;
    }
    using Entry = const SimgridModuleApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(module, kSimgridModuleEntry));
    if (entry == nullptr) {
      errors += "\n  " + path.string() + ": no " + kSimgridModuleEntry + " (a module of another build?)";
      continue;
    }
    return *entry();
  }
  throw std::runtime_error("cannot load the SimGrid module (build the clustersim_simgrid target; it is placed "
                           "beside clustersim):" + errors);
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

}  // namespace clustersim::sim
