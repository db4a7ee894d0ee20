#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim sweep SPEC.json and clustersim sweep merge (docs/sweep.md).
void register_sweep_command(CLI::App& app);

}  // namespace clustersim::cli
