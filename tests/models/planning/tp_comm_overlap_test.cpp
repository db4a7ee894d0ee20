// Tensor-parallel communication overlap (tp_comm_overlap): which GEMM each collective of a block
// runs beside, as Transformer Engine's userbuffers pair them, and what that does to the price.
#include <gtest/gtest.h>

#include <string>

#include "models/cost/profile_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/lowering/workload.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim {
namespace {

struct Lowered {
  ModelSpec model;
  ClusterSpec cluster;
  Workload workload;
};

// Llama 3 8B at TP 4 with sequence parallelism on 8 H100s; `extra` adds plan keys.
Lowered lower_llama(bool overlap, const std::string& extra = "") {
  Diagnostics diag;
  Lowered out;
  out.model = load_model_spec(resolve_input("llama-3-8b", "models", "--model"), "llama-3-8b", diag);
  out.cluster = load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
  const TrainPlan plan = load_train_plan(
      R"({"tensor_model_parallel_size": 4, "micro_batch_size": 1, "global_batch_size": 16, "seq_length": 4096,
          "sequence_parallel": true, "use_distributed_optimizer": true, "bf16": true, "tp_comm_overlap": )" +
          std::string(overlap ? "true" : "false") + extra + "}",
      diag);
  diag.throw_if_errors();
  const ParallelLayout l = derive_layout(out.model, plan, &out.cluster, 8, diag);
  out.workload = lower_training(out.model, plan, l, out.cluster);
  return out;
}

bool is_tp(const WorkOp& o) { return o.kind == OpKind::kCollective && o.cost == Cost::kTpComm; }

// The GEMM a collective is priced beside.
const WorkOp& partner(const std::vector<WorkOp>& ops, const WorkOp& collective) {
  EXPECT_GE(collective.overlaps_gemm, 0) << collective.name;
  const WorkOp& g = ops.at(static_cast<std::size_t>(collective.overlaps_gemm));
  EXPECT_EQ(g.kind, OpKind::kGemm) << collective.name << " -> " << g.name;
  return g;
}

TEST(TpCommOverlap, EachCollectiveRunsBesideTheGemmTransformerEnginePairsItWith) {
  const Lowered low = lower_llama(true, R"(, "fp8_format": "hybrid")");
  const StageProgram& s = low.workload.stages.at(0);
  const std::int64_t h = low.model.hidden_size, tp_size = 4;
  // Forward: the all-gather is pipelined with the block's first GEMM (not FP8's cast before
  // it), the reduce-scatter with its last.
  int forward = 0;
  for (const WorkOp& o : s.forward) {
    if (!is_tp(o) || o.overlaps_gemm < 0) continue;  // the LM head's gather runs alone
    const WorkOp& g = partner(s.forward, o);
    if (o.collective == CollectiveKind::kAllGather) {
      EXPECT_TRUE(g.name == "qkv" || g.name == "fc1") << g.name;
    } else {
      EXPECT_TRUE(g.name == "o_proj" || g.name == "down_proj") << g.name;
    }
    ++forward;
  }
  EXPECT_EQ(forward, 4);
  // Backward, per block in this order: the output gradient's all-gather beside the row-parallel
  // linear's input-gradient GEMM (n: its sharded input width), the input's re-gather beside the
  // column-parallel linear's input-gradient GEMM (n = h), that gradient's reduce-scatter beside
  // the column-parallel linear's weight-gradient GEMM (m = h).
  std::vector<const WorkOp*> tp;
  for (const WorkOp& o : s.backward) {
    if (is_tp(o) && o.overlaps_gemm >= 0) tp.push_back(&o);
  }
  ASSERT_EQ(tp.size(), 6u);
  const std::int64_t row_input[2] = {low.model.q_dim() / tp_size, low.model.intermediate_size / tp_size};
  for (int block = 0; block < 2; ++block) {
    const WorkOp* const* c = &tp[static_cast<std::size_t>(3 * block)];
    EXPECT_EQ(c[0]->collective, CollectiveKind::kAllGather);
    EXPECT_EQ(partner(s.backward, *c[0]).name, "dgrad");
    EXPECT_EQ(partner(s.backward, *c[0]).gemm.n, row_input[block]);
    EXPECT_EQ(c[1]->collective, CollectiveKind::kAllGather);
    EXPECT_EQ(partner(s.backward, *c[1]).name, "dgrad");
    EXPECT_EQ(partner(s.backward, *c[1]).gemm.n, h);
    EXPECT_EQ(c[2]->collective, CollectiveKind::kReduceScatter);
    EXPECT_EQ(partner(s.backward, *c[2]).name, "wgrad");
    EXPECT_EQ(partner(s.backward, *c[2]).gemm.m, h);
  }
}

TEST(TpCommOverlap, RecomputedForwardOverlapsItsOwnGemmsAndOffLeavesEveryCollectiveAlone) {
  const Lowered low = lower_llama(true, R"(, "recompute_granularity": "full", "recompute_method": "uniform",
                                          "recompute_num_layers": 1)");
  int recomputed = 0;
  for (const WorkOp& o : low.workload.stages.at(0).backward) {
    if (!is_tp(o) || o.phase != Phase::kRecompute) continue;
    EXPECT_EQ(partner(low.workload.stages.at(0).backward, o).phase, Phase::kRecompute);
    ++recomputed;
  }
  EXPECT_EQ(recomputed, 4);
  const Lowered off = lower_llama(false);
  for (const auto* list : {&off.workload.stages.at(0).forward, &off.workload.stages.at(0).backward}) {
    for (const WorkOp& o : *list) {
      if (is_tp(o)) {
        EXPECT_EQ(o.overlaps_gemm, -1) << o.name;
      }
    }
  }
}

// Sum of every TP collective's own price in a list: what is exposed without overlap.
double tp_sequential_s(const std::vector<WorkOp>& ops, const CostModel& costs) {
  double s = 0;
  for (const WorkOp& o : ops) {
    if (is_tp(o)) s += price_op(o, costs).seconds * static_cast<double>(o.count);
  }
  return s;
}

TEST(TpCommOverlap, OffPricesEveryCollectiveWholeAndOnHidesBehindTheMeasuredFit) {
  const Lowered off = lower_llama(false), on = lower_llama(true);
  const Profile h100 = load_profile(config_dir() + "/profiles/h100.json");
  const CostModel costs(h100, "h100", off.cluster);
  const StageProgram& s = off.workload.stages.at(0);
  const StageTimes t_off = price_training_stages(off.workload, costs).stages.at(0);
  EXPECT_DOUBLE_EQ(t_off.tp_comm_s, tp_sequential_s(s.forward, costs) + tp_sequential_s(s.backward, costs));
  // On, with the profile's overlap fit: both passes expose less, the backward's three
  // collectives per block included; the compute is the same.
  const StageTimes t_on = price_training_stages(on.workload, costs).stages.at(0);
  EXPECT_DOUBLE_EQ(t_on.compute_s, t_off.compute_s);
  EXPECT_LT(t_on.forward_s, t_off.forward_s);
  EXPECT_LT(t_on.backward_s, t_off.backward_s);
  EXPECT_LT(t_on.tp_comm_s, 0.5 * t_off.tp_comm_s);
  // A profile without an overlap fit prices the overlapped plan sequentially, as if off.
  Profile no_fit = h100;
  std::erase_if(no_fit.fits, [](const Fit& f) { return std::holds_alternative<OverlapFit>(f.model); });
  const CostModel sequential(no_fit, "h100", on.cluster);
  const StageTimes t_seq = price_training_stages(on.workload, sequential).stages.at(0);
  EXPECT_DOUBLE_EQ(t_seq.tp_comm_s, t_off.tp_comm_s);
  EXPECT_DOUBLE_EQ(t_seq.backward_s, t_off.backward_s);
}

}  // namespace
}  // namespace clustersim
