#pragma once
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// clustersim estimate: closed-form step time, throughput, MFU and breakdown of a training plan.
void register_estimate_command(CLI::App& app);

}  // namespace clustersim::cli
