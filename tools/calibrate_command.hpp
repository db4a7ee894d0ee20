#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim calibrate import | fit | report
void register_calibrate_command(CLI::App& app);

}  // namespace clustersim::cli
