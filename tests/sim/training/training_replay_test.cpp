// The training replay (sim/training_replay) and its scenarios. Every replay runs in a child
// process (run_in_child_process: one SimGrid engine per process); the parent only checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>

#include "sim/platform/child_process.hpp"
#include "models/cost/cost_model.hpp"
#include "models/inputs/input_error.hpp"
#include "models/accounting/memory_estimate.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/cost/profile_json.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/planning/training_estimate.hpp"
#include "sim/training/training_replay.hpp"
#include "sim/training/training_scenario.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim::sim {
namespace {

struct PricedRun {
  ClusterSpec cluster;
  Workload workload;
  TrainingEstimate estimate;
  Profile profile;
};

PricedRun make_run(const std::string& model, std::int64_t gpus, const std::string& plan_json,
                   const std::function<void(ClusterSpec&)>& edit_cluster = {}, const Mechanisms& mechanisms = {}) {
  Diagnostics diag;
  PricedRun r;
  const ModelSpec m = load_model_spec(resolve_input(model, "models", "--model"), model, diag);
  r.cluster = load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
  if (edit_cluster) edit_cluster(r.cluster);
  const TrainPlan plan = load_train_plan(plan_json, diag);
  diag.throw_if_errors();
  const ParallelLayout layout = derive_layout(m, plan, &r.cluster, gpus, diag);
  diag.throw_if_errors();
  r.workload = lower_training(m, plan, layout, r.cluster);
  r.profile = load_profile(config_dir() + "/profiles/h100.json");
  const CostModel costs(r.profile, "h100", r.cluster);
  r.estimate = estimate_training(r.workload, costs, r.cluster, estimate_memory(m, plan, layout), nullptr, mechanisms);
  return r;
}

// Step time, critical-path sum, straggler seconds, then the causes' details joined.
struct Replayed {
  double step_s = 0, path_sum_s = 0, straggler_s = 0;
  std::string details;
  std::int64_t classes = 0;
};

Replayed replay_in_child(const PricedRun& run, const ReplayOptions& options) {
  const std::string text = run_in_child_process([&] {
    const CostModel costs(run.profile, "h100", run.cluster);
    const ReplayResult r = replay_training(run.workload, run.estimate, costs, run.cluster, options);
    nlohmann::json j;
    j["t"] = r.step_time_s;
    double sum = 0;
    std::string details;
    for (const auto& c : r.critical_path) {
      sum += c.seconds;
      details += c.cause + ":" + c.detail + ";";
    }
    j["sum"] = sum;
    j["straggler"] = r.straggler_s;
    j["details"] = details;
    j["classes"] = r.replicas_simulated;
    return j.dump();
  });
  const auto j = nlohmann::json::parse(text);
  return {j["t"], j["sum"], j["straggler"], j["details"], j["classes"]};
}

const char* kPlan1F1B =
    R"({"tensor_model_parallel_size": 8, "pipeline_model_parallel_size": 4, "micro_batch_size": 1,
        "global_batch_size": 64, "seq_length": 4096, "sequence_parallel": true, "use_distributed_optimizer": true,
        "overlap_grad_reduce": true, "bf16": true})";

TEST(TrainingReplay, SymmetricPlanMatchesTheClosedFormAndThePathSumsToTheStep) {
  const PricedRun run = make_run("llama-3-8b", 128, kPlan1F1B);
  const Replayed r = replay_in_child(run, {});
  EXPECT_NEAR(r.step_s, run.estimate.step_time_s, 0.02 * run.estimate.step_time_s);
  EXPECT_NEAR(r.path_sum_s, r.step_s, 1e-9 * r.step_s);
  EXPECT_EQ(r.classes, 1);
  EXPECT_EQ(r.details.find("straggler"), std::string::npos) << r.details;
}

TEST(TrainingReplay, AStragglerSlowsTheStepAndTheCriticalPathNamesIt) {
  const PricedRun run = make_run("llama-3-8b", 128, kPlan1F1B);
  ReplayOptions slow;
  slow.perturbation.slowdowns.push_back({77, 1.5, "straggler"});  // stage 2, replica 1, node 9
  const Replayed base = replay_in_child(run, {});
  const Replayed r = replay_in_child(run, slow);
  EXPECT_GT(r.step_s, 1.05 * base.step_s);
  EXPECT_EQ(r.classes, 2);  // the nominal replica and the straggler's
  EXPECT_NE(r.details.find("straggler:rank 77 (node 9) x1.5"), std::string::npos) << r.details;
  EXPECT_GT(r.straggler_s, 0.0);
  EXPECT_NEAR(r.path_sum_s, r.step_s, 1e-9 * r.step_s);
}

TEST(TrainingReplay, FullModeAgreesWithTheSymmetricOne) {
  const PricedRun run = make_run("llama-3-8b", 128, kPlan1F1B);
  ReplayOptions full;
  full.full = true;
  const Replayed sym = replay_in_child(run, {});
  const Replayed all = replay_in_child(run, full);
  EXPECT_EQ(all.classes, 4);
  EXPECT_NEAR(all.step_s, sym.step_s, 0.005 * sym.step_s);
}

// Two nodes per leaf and two planes: every pipeline connection leaves its leaf, and hashed
// connections collide. Estimate and replay both charge it and name it; ablated, both give the
// prices of the adaptive (bundled) fabric exactly.
void two_node_leaves_with_ecmp(ClusterSpec& c) {
  c.fabric.nodes_per_leaf = 2;
  c.fabric.routing = "ecmp";
  c.fabric.uplinks_per_leaf = 2;
  c.fabric.flows_per_peer = 1;
}

TEST(TrainingReplay, EcmpCollisionsSlowPipelineTransfersAndAreNamed) {
  auto adaptive = [](ClusterSpec& c) { c.fabric.nodes_per_leaf = 2; };
  Mechanisms no_ecmp;
  no_ecmp.ecmp = false;
  const PricedRun bundled = make_run("llama-3-8b", 128, kPlan1F1B, adaptive);
  const PricedRun ecmp = make_run("llama-3-8b", 128, kPlan1F1B, two_node_leaves_with_ecmp);
  const PricedRun ablated = make_run("llama-3-8b", 128, kPlan1F1B, two_node_leaves_with_ecmp, no_ecmp);
  EXPECT_GT(ecmp.estimate.step_time_s, bundled.estimate.step_time_s);
  EXPECT_EQ(ablated.estimate.step_time_s, bundled.estimate.step_time_s);

  ReplayOptions off;
  off.mechanisms.ecmp = false;
  const Replayed base = replay_in_child(bundled, {});
  const Replayed off_r = replay_in_child(ecmp, off);
  EXPECT_EQ(off_r.step_s, base.step_s);
  // Over a few hash seeds: never faster than the bundle, slower and named when a connection
  // on the path collides.
  bool named = false;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    ReplayOptions o;
    o.fleet_seed = seed;
    const Replayed r = replay_in_child(ecmp, o);
    ReplayOptions b;
    b.fleet_seed = seed;
    const Replayed same_seed_bundle = replay_in_child(bundled, b);
    EXPECT_GE(r.step_s, same_seed_bundle.step_s * (1 - 1e-9));
    EXPECT_NEAR(r.path_sum_s, r.step_s, 1e-9 * r.step_s);
    if (r.details.find("contention:ECMP collisions (pipeline transfers, worst x2)") != std::string::npos) {
      named = true;
      EXPECT_GT(r.step_s, same_seed_bundle.step_s);
    }
  }
  EXPECT_TRUE(named);
}

TEST(TrainingReplay, ASlowNicOnThePipelinePathShowsAsContentionOnThatLink) {
  const PricedRun run = make_run("llama-3-8b", 128, kPlan1F1B);
  ReplayOptions slow;
  // Replica 0's stage 0 -> stage 1 transfers leave node 0 on rail 0 (ranks 0 -> 32).
  slow.perturbation.links.push_back({"nic_up.n0.r0", 0.01, 0, false});
  const Replayed base = replay_in_child(run, {});
  const Replayed r = replay_in_child(run, slow);
  EXPECT_GT(r.step_s, base.step_s);
  EXPECT_NE(r.details.find("contention:nic_up.n0.r0"), std::string::npos) << r.details;
}

TEST(TrainingReplay, AFailedLinkOnTheRouteIsReported) {
  const PricedRun run = make_run("llama-3-8b", 128, kPlan1F1B);
  ReplayOptions failed;
  failed.perturbation.links.push_back({"nic_up.n0.r0", 1, 0, true});
  try {
    replay_in_child(run, failed);
    ADD_FAILURE() << "expected a failure";
  } catch (const ChildProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("nic_up.n0.r0"), std::string::npos) << e.what();
  }
}

ClusterSpec h100() {
  Diagnostics diag;
  return load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
}

TEST(TrainingScenario, FractionOfNodesIsSeededAndDeterministic) {
  const ClusterSpec c = h100();
  auto doc = nlohmann::json::parse(R"({"seed": 7, "stragglers": [{"fraction_of_nodes": 0.01, "slowdown": 1.2}]})");
  const TrainingScenario s = parse_training_scenario(doc, "s.json", c, 16384);
  const ReplayPerturbation a = resolve_scenario(s, c, 16384), b = resolve_scenario(s, c, 16384);
  ASSERT_EQ(a.slowdowns.size(), 20u * 8);  // 1 % of 2,048 nodes, 8 GPUs each
  for (std::size_t i = 0; i < a.slowdowns.size(); ++i) {
    EXPECT_EQ(a.slowdowns[i].rank, b.slowdowns[i].rank);
    EXPECT_EQ(a.slowdowns[i].factor, 1.2);
  }
  doc["seed"] = 8;
  const ReplayPerturbation other = resolve_scenario(parse_training_scenario(doc, "s.json", c, 16384), c, 16384);
  bool differs = false;
  for (std::size_t i = 0; i < a.slowdowns.size(); ++i) differs = differs || other.slowdowns[i].rank != a.slowdowns[i].rank;
  EXPECT_TRUE(differs);
}

TEST(TrainingScenario, GpuTypeSlowdownIsTheRatioOfPeaks) {
  const ClusterSpec c = h100();
  auto doc = nlohmann::json::parse(R"({"gpu_types": [{"nodes": [3], "cluster": "a100-hdr"}]})");
  const ReplayPerturbation p = resolve_scenario(parse_training_scenario(doc, "s.json", c, 64), c, 64);
  ASSERT_EQ(p.slowdowns.size(), 8u);
  EXPECT_EQ(p.slowdowns[0].rank, 24);
  EXPECT_NEAR(p.slowdowns[0].factor, 989.4 / 312.0, 0.01);
  EXPECT_EQ(p.slowdowns[0].cause, "gpu_type");
}

TEST(TrainingScenario, BadFieldsAreAllReportedWithPointers) {
  const ClusterSpec c = h100();
  auto doc = nlohmann::json::parse(R"({"stragglers": [{"ranks": [99], "slowdown": 0.5}],
      "links": [{"name": "nic_up.n99.r0", "bandwidth_factor": 0.5}], "background": [{"src": 0, "dst": 1}],
      "colour": 1})");
  try {
    parse_training_scenario(doc, "s.json", c, 64);
    ADD_FAILURE() << "expected errors";
  } catch (const InputErrors& e) {
    std::string all;
    for (const auto& err : e.errors()) all += err.to_string() + "\n";
    for (const char* p : {"/stragglers/0/ranks/0", "/stragglers/0/slowdown", "/links/0/name", "/background/0/bytes", "/colour"}) {
      EXPECT_NE(all.find(std::string("s.json:") + p), std::string::npos) << p << "\n" << all;
    }
  }
}

TEST(TrainingScenario, NodeFailureGoodputClosedForm) {
  NodeFailureSpec f;
  f.steps = 100;
  f.checkpoint_interval_steps = 10;
  f.checkpoint_write_s = 5;
  f.restart_s = 60;
  f.at_s = 333;  // cycles of 10 * 10 s + 5 s: three done at 315 s, 18 s lost
  const FailureGoodput g = failure_goodput(f, 10.0);
  EXPECT_TRUE(g.failure_within_run);
  EXPECT_DOUBLE_EQ(g.lost_s, 18.0);
  EXPECT_DOUBLE_EQ(g.checkpoint_s, 50.0);
  EXPECT_DOUBLE_EQ(g.wall_s, 1000.0 + 50.0 + 18.0 + 60.0);
  EXPECT_DOUBLE_EQ(g.goodput, 1000.0 / 1128.0);
  f.at_s = 5000;  // after the run
  EXPECT_FALSE(failure_goodput(f, 10.0).failure_within_run);
  EXPECT_DOUBLE_EQ(failure_goodput(f, 10.0).goodput, 1000.0 / 1050.0);
}

}  // namespace
}  // namespace clustersim::sim
