#include "tools/calibrate_replay_command.hpp"

#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "calibrate/backend.hpp"
#include "tools/cli_common.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/lowering/workload.hpp"
#include "calibrate/workload_replay.hpp"

namespace clustersim::cli {

namespace {

struct ReplayOptions {
  std::string backend = "cpu";
  std::string model, plan, cluster = "cpu-local", profile, id, output, timeline;
  std::int64_t gpus = 0;
  int warmup = 1;
  int iterations = 5;
  double tolerance = 0.20;
  bool oversubscribe = false;
};

// A case-file input as the user gave it: inline JSON as an object, an existing file as its
// absolute path (validate may run elsewhere), anything else (a preset name) unchanged.
nlohmann::ordered_json case_input(const std::string& argument) {
  std::size_t first = argument.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && argument[first] == '{') {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(argument, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) return j;
    return argument;
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(argument, ec)) return std::filesystem::absolute(argument).string();
  return argument;
}


void run_replay(const ReplayOptions& o) {
  if (o.backend != "cpu") {
    throw UsageError(fmt::format("calibrate replay --backend {}: only the cpu backend replays workloads", o.backend));
  }
  Diagnostics diag;
  ModelSpec model = load_model(o.model, diag);
  ClusterSpec cluster = load_cluster(o.cluster, diag);
  TrainPlan plan = load_plan(o.plan, "", diag);
  diag.throw_if_errors();
  ParallelLayout layout = derive_layout(model, plan, &cluster, o.gpus, diag);
  diag.throw_if_errors();
  print_warnings(diag);
  const Workload workload = lower_training(model, plan, layout, cluster);
  try {
    calibrate::check_replayable(workload);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("calibrate replay: {}", e.what()));
  }
  // More rank threads than cores measures the contention between them, a regime no profile is
  // measured in: a 4-rank replay on 2 cores ran 28-57 % slower than predicted (issue 20).
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores > 0 && layout.world > static_cast<std::int64_t>(cores)) {
    if (!o.oversubscribe) {
      throw UsageError(fmt::format(
          "calibrate replay: {} ranks on {} hardware threads would share cores, and the measured step would "
          "include that contention, which no profile models; use --gpus {} or less, or --oversubscribe to run anyway",
          layout.world, cores, cores));
    }
    std::cerr << fmt::format("warning: {} ranks on {} hardware threads (--oversubscribe): ranks share cores, "
                             "the measured step includes that contention\n",
                             layout.world, cores);
  }
  std::cerr << fmt::format("calibrate replay: {} on {} CPU thread(s) as ranks (TP {} PP {} DP {}, {} micro-batch(es)), "
                           "{} warm-up + {} timed iteration(s)\n",
                           o.model.size() > 40 ? "the model" : o.model, layout.world, layout.tp, layout.pp, layout.dp, layout.num_microbatches,
                           o.warmup, o.iterations);
  calibrate::ReplayOptions options;
  options.warmup_iterations = o.warmup;
  options.iterations = o.iterations;
  const calibrate::ReplayResult result = calibrate::replay_workload(workload, options);
  std::cerr << fmt::format("calibrate replay: step {:.4f} s (median of {})\n", result.step_time_s,
                           result.samples_s.size());
  for (const auto& s : result.stages) {
    std::cerr << fmt::format("  stage {}: forward {:.4f} s, backward {:.4f} s, step {:.4f} s, waiting {:.4f} s, "
                             "done at {:.4f} s; GEMM {:.4f} s, attention {:.4f} s, memory-bound {:.4f} s, "
                             "collectives {:.4f} s\n",
                             s.pp_rank, s.forward_s, s.backward_s, s.step_s, s.wait_s, s.finish_s, s.gemm_s,
                             s.attention_s, s.memory_bound_s, s.collective_s);
  }

  // An inline model has no name of its own: describe it by its size.
  const std::string model_name = case_input(o.model).is_object()
                                     ? fmt::format("inline l{} h{}", model.num_layers, model.hidden_size)
                                     : model.name;
  const std::string id = o.id.empty() ? fmt::format("cpu replay {} tp{} pp{} dp{} mb{}", model_name, layout.tp,
                                                    layout.pp, layout.dp, layout.num_microbatches)
                                      : o.id;
  nlohmann::ordered_json c;
  c["id"] = id;
  c["source"] = fmt::format("clustersim calibrate replay --backend cpu, {}", calibrate::cpu_model_name());
  c["group"] = "cpu replay";
  c["model"] = case_input(o.model);
  c["cluster"] = case_input(o.cluster);
  if (!o.profile.empty()) {
    std::error_code ec;
    c["profile"] = std::filesystem::is_regular_file(o.profile, ec) ? std::filesystem::absolute(o.profile).string()
                                                                  : o.profile;
  }
  c["num_gpus"] = layout.world;
  c["plan"] = case_input(o.plan);
  c["tolerance"] = o.tolerance;
  c["measured"] = {{"step_time_s", result.step_time_s}};
  nlohmann::ordered_json doc;
  doc["cases"] = nlohmann::ordered_json::array({c});
  write_output(o.output, doc.dump(2) + "\n");

  if (!o.timeline.empty()) {
    nlohmann::ordered_json t;
    t["id"] = id;
    t["ranks"] = result.ranks;
    t["step_time_s"] = result.step_time_s;
    t["samples_s"] = result.samples_s;
    auto stages = nlohmann::ordered_json::array();
    for (const auto& s : result.stages) {
      stages.push_back({{"pp_rank", s.pp_rank}, {"forward_s", s.forward_s}, {"backward_s", s.backward_s},
                        {"step_s", s.step_s}, {"wait_s", s.wait_s}, {"finish_s", s.finish_s},
                        {"gemm_s", s.gemm_s}, {"attention_s", s.attention_s},
                        {"memory_bound_s", s.memory_bound_s}, {"collective_s", s.collective_s}});
    }
    t["stages"] = stages;
    write_output(o.timeline, t.dump(2) + "\n");
  }
}

}  // namespace

void register_calibrate_replay_command(CLI::App& calibrate) {
  auto o = std::make_shared<ReplayOptions>();
  CLI::App* cmd = calibrate.add_subcommand(
      "replay", "Run a small training plan for real, CPU threads as ranks, and write the measured step as a "
                "validation case");
  cmd->footer(
      "One thread per rank (TP x PP x DP <= 8): real GEMMs and attention of the lowered shapes,\n"
      "collectives between threads, 1F1B pipeline transfers, gradient reduction. The output is a\n"
      "case file for `clustersim validate` (docs/calibration.md). cpu-profile.json is the profile\n"
      "`calibrate run --help`'s examples measure and fit.\n"
      "Example:\n"
      "  clustersim calibrate replay --backend cpu --model examples/tiny-gpt.json \\\n"
      "      --plan examples/tiny-gpt-tp2.json --gpus 2 --profile cpu-profile.json -o tp2.case.json\n"
      "  clustersim validate tp2.case.json");
  cmd->add_option("--backend", o->backend, "cpu (the only backend that replays)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--model", o->model, "Hugging Face config.json path, inline JSON, or preset")->required();
  cmd->add_option("--plan", o->plan, "Plan JSON (Megatron-LM argument names), inline JSON, or preset")->required();
  cmd->add_option("--gpus", o->gpus, "World size: ranks (threads), TP x PP x DP")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{8}));
  cmd->add_option("--cluster", o->cluster, "Cluster preset or file the plan is lowered on (default: cpu-local)");
  cmd->add_option("--profile", o->profile, "Profile validate should predict with (copied into the case)");
  cmd->add_option("--warmup", o->warmup, "Warm-up iterations (default 1)")->check(CLI::Range(0, 1000));
  cmd->add_option("--iterations", o->iterations, "Timed iterations; the median is the step (default 5)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--tolerance", o->tolerance, "The case's tolerance (default 0.20)")->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--id", o->id, "Case id (default: model and plan)");
  cmd->add_option("-o,--output", o->output, "Case file to write (default: stdout)")->check(writable_file());
  cmd->add_option("--timeline", o->timeline, "Also write the samples and per-stage timings here (JSON)");
  cmd->add_flag("--oversubscribe", o->oversubscribe,
                "Run even with more ranks than hardware threads (refused otherwise: the step would measure "
                "the threads' contention)");
  cmd->callback([o] { run_replay(*o); });
}

}  // namespace clustersim::cli
