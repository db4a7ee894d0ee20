#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim validate CASES.json: predicted vs. measured on published runs.
void register_validate_command(CLI::App& app);

}  // namespace clustersim::cli
