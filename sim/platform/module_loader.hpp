#pragma once
// Opens a module (a shared library built beside the clustersim binary) and finds its entry
// point: beside the running executable first (an installed clustersim), then where the build put
// it (test binaries, bench_platform and the Python module live in other folders of the build
// tree). Used for the SimGrid adapter and the sweep's MPI module; each stays open for good.
#include <string>

namespace clustersim::sim {

// The address of `entry` in the first of the two places that opens and has it; throws
// std::runtime_error listing why each place failed. `global`: RTLD_GLOBAL (a library whose own
// plug-ins look up its symbols in the process, as Open MPI's do).
void* open_module_entry(const std::string& file_name, const std::string& build_path, const char* entry,
                        bool global = false);

}  // namespace clustersim::sim
