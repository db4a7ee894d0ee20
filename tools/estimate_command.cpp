#include "estimate_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "training_estimate.hpp"
#include "training_run.hpp"
#include "units_format.hpp"

namespace clustersim::cli {

namespace {

struct EstimateOptions {
  std::string model, cluster, plan, megatron_args, profile;
  std::int64_t gpus = 0;
  Format format = Format::kTable;
};

void run(const EstimateOptions& o) {
  Diagnostics diag;
  ModelSpec model = load_model(o.model, diag);
  ClusterSpec cluster = load_cluster(o.cluster, diag);
  TrainPlan plan = load_plan(o.plan, o.megatron_args, diag);
  diag.throw_if_errors();
  LoadedProfile profile = load_profile_for(o.profile, cluster);
  TrainingRun result = run_estimate(model, plan, cluster, o.gpus, profile.profile, profile.file, diag);
  print_warnings(diag);
  if (o.format == Format::kJson) {
    std::cout << estimate_json(result, profile.file).dump(2) << '\n';
  } else {
    print_estimate_table(result, profile.file, std::cout);
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
      "--micro-batch-size 1 --global-batch-size 128 --seq-length 8192 --bf16\" --format json");
  cmd->add_option("--model", o->model, "Hugging Face config.json path, inline JSON, or preset")->required();
  cmd->add_option("--cluster", o->cluster, "Cluster preset or JSON file")->required();
  cmd->add_option("--gpus", o->gpus, "World size (number of GPUs)")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--plan", o->plan, "Plan JSON (Megatron-LM argument names) or preset");
  cmd->add_option("--from-megatron-args", o->megatron_args, "A pasted Megatron-LM command line, instead of --plan");
  cmd->add_option("--profile", o->profile,
                  "Profile file or shipped name (default: the shipped profile of the cluster's GPU)");
  add_format_option(*cmd, o->format);
  cmd->callback([o] {
    if (o->plan.empty() && o->megatron_args.empty()) throw UsageError("give --plan or --from-megatron-args");
    run(*o);
  });
}

}  // namespace clustersim::cli
