#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim serve-validate TABLE.csv: published offline engine throughputs vs. serve's engine.
void register_serve_validate_command(CLI::App& app);

}  // namespace clustersim::cli
