#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "models/cost/profile.hpp"
#include "sim/training/training_replay.hpp"
#include "tools/training_run.hpp"

namespace clustersim::cli {

// clustersim simulate: SimGrid replay of one training iteration (docs/simulate.md).
void register_simulate_command(CLI::App& app);

// One replay of an estimated run, in a child process of its own (one SimGrid engine per process).
sim::ReplayResult simulate_in_child(const TrainingRun& run, const Profile& profile, const std::string& profile_file,
                                    const sim::ReplayOptions& options);

// The estimate with its step time replaced by a simulated one, and the rates that follow from it.
void use_step_time(TrainingEstimate& estimate, double step_time_s);

}  // namespace clustersim::cli
