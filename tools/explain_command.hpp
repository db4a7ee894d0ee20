#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// Registers `clustersim explain`.
void register_explain_command(CLI::App& app);

}  // namespace clustersim::cli
