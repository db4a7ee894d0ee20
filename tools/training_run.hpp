#pragma once
// Shared by estimate, search and validate: validate a plan on a cluster, lower it, price it,
// and render the result as a table or JSON.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "tools/cli_common.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/accounting/memory_estimate.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/cost/profile.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/planning/training_estimate.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim::cli {

struct TrainingRun {
  ModelSpec model;
  TrainPlan plan;
  ClusterSpec cluster;
  ParallelLayout layout;
  MemoryEstimate memory;
  Workload workload;
  TrainingEstimate estimate;
  Mechanisms mechanisms;
};

// Throws InputErrors when the plan does not apply to the model, cluster and world size.
TrainingRun run_estimate(const ModelSpec& model, const TrainPlan& plan, const ClusterSpec& cluster,
                         std::int64_t gpus, const Profile& profile, const std::string& profile_file,
                         Diagnostics& diag, const Mechanisms& mechanisms = {});

// The inputs of a training run on the command line (estimate, simulate).
struct TrainingInputs {
  std::string model, cluster, plan, megatron_args, profile, fleet;
  std::vector<std::string> ablate;
  std::int64_t gpus = 0;
  bool require_fit = false;
  bool by_mechanism = false;  // --by-mechanism: tools/mechanism_ledger.hpp
};
// The same run's inputs estimated again under other mechanisms (--by-mechanism).
TrainingRun rerun_estimate(const TrainingRun& run, const LoadedProfile& profile, const Mechanisms& mechanisms);
// Exit code of --require-fit when the plan does not fit in memory.
inline constexpr int kExitDoesNotFit = 3;
// --model, --cluster, --gpus, --plan, --from-megatron-args, --profile, --fleet, --ablate,
// --require-fit, --by-mechanism.
void add_training_input_options(CLI::App& cmd, TrainingInputs& inputs);
// Loads the inputs (every error collected, then one report), estimates, prints warnings (one if
// the plan does not fit in memory). With --require-fit, a plan that does not fit ends the command
// here: an error on stderr, nothing on stdout, exit kExitDoesNotFit.
TrainingRun estimate_inputs(const TrainingInputs& inputs, LoadedProfile& profile);

nlohmann::ordered_json estimate_json(const TrainingRun& run, const std::string& profile_file);
void print_estimate_table(const TrainingRun& run, const std::string& profile_file, std::ostream& out);

}  // namespace clustersim::cli
