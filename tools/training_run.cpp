#include "tools/training_run.hpp"

#include <fmt/format.h>

#include <iostream>

#include "models/cost/cost_model.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

TrainingRun run_estimate(const ModelSpec& model, const TrainPlan& plan, const ClusterSpec& cluster,
                         std::int64_t gpus, const Profile& profile, const std::string& profile_file,
                         Diagnostics& diag, const Mechanisms& mechanisms) {
  TrainingRun r{model, plan, cluster, {}, {}, {}, {}, mechanisms};
  if (!mechanisms.nccl_tuner) r.cluster.nccl.reset();  // every later price (simulate too) uses r.cluster
  r.layout = derive_layout(model, plan, &r.cluster, gpus, diag);
  r.memory = estimate_memory(model, plan, r.layout);
  TrainPlan lowered = plan;
  if (!mechanisms.moe_routing) {
    lowered.moe_routing.reset();
    lowered.moe_expert_capacity_factor.reset();
    lowered.moe_pad_expert_input_to_capacity = false;
  }
  r.workload = lower_training(model, lowered, r.layout, r.cluster);
  CostModel costs(profile, profile_file, r.cluster);
  r.estimate = estimate_training(r.workload, costs, r.cluster, r.memory, nullptr, mechanisms);
  return r;
}

void add_training_input_options(CLI::App& cmd, TrainingInputs& in) {
  cmd.add_option("--model", in.model, "Hugging Face config.json path, inline JSON, or preset")->required();
  cmd.add_option("--cluster", in.cluster, "Cluster preset or JSON file")->required();
  cmd.add_option("--gpus", in.gpus, "World size (number of GPUs)")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd.add_option("--plan", in.plan, "Plan JSON (Megatron-LM argument names) or preset");
  cmd.add_option("--from-megatron-args", in.megatron_args, "A pasted Megatron-LM command line, instead of --plan");
  cmd.add_option("--profile", in.profile,
                 "Profile file or shipped name (default: the shipped profile of the cluster's GPU)");
  add_fleet_option(cmd, in.fleet);
  add_ablate_option(cmd, in.ablate);
  cmd.add_flag("--require-fit", in.require_fit,
               "Exit 3 (no result) when the plan does not fit in GPU memory; without it, a warning");
  cmd.add_flag("--by-mechanism", in.by_mechanism,
               "Also price the step with every mechanism off, then turned on one at a time, and list what each "
               "adds (one more run per mechanism)");
}

TrainingRun rerun_estimate(const TrainingRun& run, const LoadedProfile& profile, const Mechanisms& mechanisms) {
  Diagnostics diag;  // the inputs were checked by the first run; its warnings are printed
  return run_estimate(run.model, run.plan, run.cluster, run.layout.world, profile.profile, profile.file, diag, mechanisms);
}

TrainingRun estimate_inputs(const TrainingInputs& in, LoadedProfile& profile) {
  if (in.plan.empty() && in.megatron_args.empty()) throw UsageError("give --plan or --from-megatron-args");
  Diagnostics diag;
  ModelSpec model = load_model(in.model, diag);
  ClusterSpec cluster = load_cluster(in.cluster, diag);
  TrainPlan plan = load_plan(in.plan, in.megatron_args, diag);
  diag.throw_if_errors();
  apply_fleet_option(in.fleet, cluster);
  profile = load_profile_for(in.profile, cluster);
  TrainingRun result =
      run_estimate(model, plan, cluster, in.gpus, profile.profile, profile.file, diag, parse_ablate(in.ablate));
  warn_if_not_fitting(diag, plan.source, result.memory, cluster);
  print_warnings(diag);
  if (in.require_fit && !result.estimate.fits_in_memory) {
    std::cerr << "error: --require-fit: the plan does not fit in GPU memory (see the warning above)\n";
    throw ExitWithCode{kExitDoesNotFit};
  }
  return result;
}

nlohmann::ordered_json estimate_json(const TrainingRun& run, const std::string& profile_file) {
  const TrainingEstimate& e = run.estimate;
  const StepBreakdown& b = e.breakdown;
  nlohmann::ordered_json j;
  j["model"] = run.model.name;
  j["cluster"] = run.cluster.name;
  j["fleet"] = run.cluster.fleet.name;
  j["profile"] = profile_file;
  j["num_gpus"] = run.layout.world;
  j["plan"] = {{"tensor_model_parallel_size", run.layout.tp},
               {"pipeline_model_parallel_size", run.layout.pp},
               {"virtual_stages_per_pipeline_rank", run.layout.virtual_stages},
               {"context_parallel_size", run.layout.cp},
               {"expert_model_parallel_size", run.layout.ep},
               {"data_parallel_size", run.layout.dp},
               {"micro_batch_size", run.layout.micro_batch_size},
               {"global_batch_size", run.layout.global_batch_size},
               {"num_microbatches", run.layout.num_microbatches},
               {"seq_length", run.layout.seq_length}};
  j["step_time_s"] = e.step_time_s;
  j["tokens_per_s"] = e.tokens_per_s;
  j["tokens_per_s_per_gpu"] = e.tokens_per_s_per_gpu;
  j["tflops_per_gpu"] = e.tflops_per_gpu;
  j["mfu"] = e.mfu;
  j["hfu"] = e.hfu;
  j["memory_per_gpu_bytes"] = round_bytes(e.memory_per_gpu_bytes);
  j["fits_in_memory"] = e.fits_in_memory;
  j["breakdown"] = {{"compute_s", b.compute_s},     {"bubble_s", b.bubble_s},
                    {"optimizer_s", b.optimizer_s}, {"tp_comm_s", b.tp_comm_s},
                    {"cp_comm_s", b.cp_comm_s},     {"ep_comm_s", b.ep_comm_s},
                    {"dp_comm_s", b.dp_comm_s},     {"pp_comm_s", b.pp_comm_s},
                    {"fixed_s", b.fixed_s},         {"variability_s", b.variability_s},
                    {"imbalance_s", b.imbalance_s}, {"interference_s", b.interference_s}};
  j["priced_ops"] = {{"total", e.priced_ops},
                     {"extrapolated", e.extrapolated_ops},
                     {"roofline_default", e.roofline_ops}};
  return j;
}

void print_estimate_table(const TrainingRun& run, const std::string& profile_file, std::ostream& out) {
  const TrainingEstimate& e = run.estimate;
  const StepBreakdown& b = e.breakdown;
  const ParallelLayout& l = run.layout;
  out << fmt::format("model        {} on {} x {} ({}), profile {}, fleet {}\n", run.model.name, l.world,
                     run.cluster.gpu.name, run.cluster.name, profile_file, run.cluster.fleet.name);
  out << fmt::format("plan         TP {} PP {}{} CP {} EP {} DP {}, micro batch {}, global batch {} "
                     "({} micro-batches), sequence {}\n",
                     l.tp, l.pp, l.virtual_stages > 1 ? fmt::format(" (x{} virtual)", l.virtual_stages) : "",
                     l.cp, l.ep, l.dp, l.micro_batch_size, l.global_batch_size, l.num_microbatches,
                     l.seq_length);
  out << fmt::format("step time    {:.3f} s\n", e.step_time_s);
  out << fmt::format("throughput   {:.0f} tokens/s ({:.1f} per GPU), {:.1f} TFLOP/s per GPU\n", e.tokens_per_s,
                     e.tokens_per_s_per_gpu, e.tflops_per_gpu);
  out << fmt::format("utilisation  MFU {:.1f} %, HFU {:.1f} %\n", 100 * e.mfu, 100 * e.hfu);
  out << fmt::format("memory       {} per GPU (peak stage), {}\n", human_bytes(e.memory_per_gpu_bytes),
                     e.fits_in_memory ? "fits" : "DOES NOT FIT");
  auto row = [&](const char* name, double s) {
    out << fmt::format("  {:<12} {:>9.3f} s  {:>5.1f} %\n", name, s, 100 * s / e.step_time_s);
  };
  out << "breakdown\n";
  row("compute", b.compute_s);
  row("bubble", b.bubble_s);
  row("tp comm", b.tp_comm_s);
  row("cp comm", b.cp_comm_s);
  row("ep comm", b.ep_comm_s);
  row("pp comm", b.pp_comm_s);
  row("dp comm", b.dp_comm_s);
  row("optimizer", b.optimizer_s);
  row("fixed", b.fixed_s);
  row("variability", b.variability_s);
  row("imbalance", b.imbalance_s);
  row("interference", b.interference_s);
  out << fmt::format("priced       {} operations: {} extrapolated beyond their fit, {} by roofline defaults\n",
                     e.priced_ops, e.extrapolated_ops, e.roofline_ops);
}

}  // namespace clustersim::cli
