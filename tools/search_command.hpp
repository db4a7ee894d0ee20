#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim search: enumerate, filter by memory, rank by estimate.
void register_search_command(CLI::App& app);

}  // namespace clustersim::cli
