#include "tools/estimate_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "tools/cli_common.hpp"
#include "tools/mechanism_ledger.hpp"
#include "tools/operation_table.hpp"
#include "models/planning/training_estimate.hpp"
#include "tools/training_run.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

namespace {

struct EstimateOptions {
  TrainingInputs inputs;
  Format format = Format::kTable;
  bool operations = false;
};

void run(const EstimateOptions& o) {
  LoadedProfile profile;
  TrainingRun result = estimate_inputs(o.inputs, profile);
  const CostModel costs(profile.profile, profile.file, result.cluster);
  std::optional<MechanismLedger> ledger;
  if (o.inputs.by_mechanism) {
    ledger = mechanism_ledger(result.mechanisms, result.estimate.step_time_s, [&](const Mechanisms& m) {
      return rerun_estimate(result, profile, m).estimate.step_time_s;
    });
  }
  if (o.format == Format::kJson) {
    nlohmann::ordered_json j = estimate_json(result, profile.file);
    if (ledger) j["by_mechanism"] = mechanism_ledger_json(*ledger);
    if (o.operations) j["operations"] = operations_json(result, costs);
    std::cout << j.dump(2) << '\n';
  } else {
    print_estimate_table(result, profile.file, std::cout);
    if (ledger) print_mechanism_ledger(*ledger, std::cout);
    if (o.operations) print_operations_table(result, costs, std::cout);
  }
}

}  // namespace

void register_estimate_command(CLI::App& app) {
  auto o = std::make_shared<EstimateOptions>();
  CLI::App* cmd = app.add_subcommand("estimate", "Closed-form step time, tokens/s, MFU and breakdown of a training plan");
  cmd->footer(
      "Examples:\n"
      "  clustersim estimate --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \\\n"
      "      --plan llama-3.1-405b-16k\n"
      "  clustersim estimate --model llama-3-70b --cluster h100-ndr --gpus 64 --profile h100 \\\n"
      "      --from-megatron-args \"--tensor-model-parallel-size 4 --pipeline-model-parallel-size 4 "
      "--micro-batch-size 1 --global-batch-size 128 --seq-length 8192 --bf16\" --format json\n"
      "  clustersim estimate --model llama-3-8b --cluster h100-ndr --gpus 8 --ops \\\n"
      "      --from-megatron-args \"--micro-batch-size 1 --global-batch-size 128 --seq-length 8192 --bf16\"");
  add_training_input_options(*cmd, o->inputs);
  add_format_option(*cmd, o->format);
  cmd->add_flag("--ops", o->operations,
                "Also list every operation of the bottleneck pipeline stage with its price and the fit behind it");
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
