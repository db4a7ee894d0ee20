#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim serve: request-level serving simulation (docs/serve.md).
void register_serve_command(CLI::App& app);

}  // namespace clustersim::cli
