#pragma once
// clustersim calibrate replay: runs a small training plan for real with CPU threads as ranks
// (calibrate/workload_replay.hpp) and writes the measured step as a validation case file.
#include <CLI/CLI.hpp>

namespace clustersim::cli {

// Adds "replay" under the calibrate subcommand.
void register_calibrate_replay_command(CLI::App& calibrate);

}  // namespace clustersim::cli
