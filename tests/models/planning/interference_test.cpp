// Compute slowed by overlapped DP collectives' SMs: the closed form on a hand-made timeline, and
// the mechanism on a real plan (on: slower by what the breakdown names; off: today's price).
#include <gtest/gtest.h>

#include "models/accounting/memory_estimate.hpp"
#include "models/cost/profile_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/lowering/workload.hpp"
#include "models/planning/iteration_graph.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim {
namespace {

TEST(Interference, OverlappedShareOfComputeRunsOnTheRemainingSms) {
  IterationGraph g;
  g.pp = 2;
  IterationActivity fwd, bwd, other_stage, dp;
  fwd.kind = IterationActivityKind::kForward, fwd.stage = 0;
  bwd.kind = IterationActivityKind::kBackward, bwd.stage = 0;
  other_stage.kind = IterationActivityKind::kBackward, other_stage.stage = 1;
  dp.kind = IterationActivityKind::kDpCollective, dp.stage = 0, dp.comm_sms = 12;
  g.activities = {fwd, bwd, other_stage, dp};
  const std::vector<ActivitySpan> spans{{0, 10}, {10, 20}, {0, 20}, {5, 12}};
  const std::vector<double> extra = interference_extra_s(g, spans, 132);
  EXPECT_DOUBLE_EQ(extra[0], 5 * 12.0 / 120);  // [5, 10] overlapped
  EXPECT_DOUBLE_EQ(extra[1], 2 * 12.0 / 120);  // [10, 12]
  EXPECT_EQ(extra[2], 0.0);                    // another stage's collective lane
  EXPECT_EQ(extra[3], 0.0);
  g.activities[3].comm_sms = 0;  // a collective whose kernel is unknown holds no SMs
  EXPECT_EQ(interference_extra_s(g, spans, 132)[0], 0.0);
}

TEST(Interference, SlowsAnOverlappedPlanByTheNamedLineAndAblatesExactly) {
  Diagnostics diag;
  const ModelSpec m = load_model_spec(resolve_input("gpt3-175b", "models", "--model"), "gpt3-175b", diag);
  const ClusterSpec c = load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
  const TrainPlan plan = load_train_plan(
      R"({"tensor_model_parallel_size": 4, "pipeline_model_parallel_size": 8, "num_layers_per_virtual_pipeline_stage": 1,
          "micro_batch_size": 1, "global_batch_size": 1024, "seq_length": 2048, "sequence_parallel": true,
          "use_distributed_optimizer": true, "overlap_grad_reduce": true, "overlap_param_gather": true, "bf16": true})",
      diag);
  diag.throw_if_errors();
  const ParallelLayout l = derive_layout(m, plan, &c, 2048, diag);
  const Workload w = lower_training(m, plan, l, c);
  const CostModel costs(load_profile(config_dir() + "/profiles/h100.json"), "h100", c);
  const MemoryEstimate mem = estimate_memory(m, plan, l);
  Mechanisms off;
  off.interference = false;
  const TrainingEstimate on = estimate_training(w, costs, c, mem);
  const TrainingEstimate without = estimate_training(w, costs, c, mem, nullptr, off);
  EXPECT_GT(on.breakdown.interference_s, 0.0);
  EXPECT_EQ(without.breakdown.interference_s, 0.0);
  EXPECT_GT(on.step_time_s, without.step_time_s);
  // The breakdown is the tail rank's: its own slowed compute is the line; slowed compute on the
  // other stages reaches it as a later start (bubble). So the step grows by at least the line.
  const double grown = on.step_time_s - without.step_time_s;
  EXPECT_GE(grown, 0.99 * on.breakdown.interference_s);
  EXPECT_LE(grown, 4 * on.breakdown.interference_s);
}

}  // namespace
}  // namespace clustersim
