#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// Registers `clustersim whatif` (straggler what-if analysis of a per-op trace).
void register_whatif_command(CLI::App& app);

}  // namespace clustersim::cli
