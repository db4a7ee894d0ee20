// Packed documents in a plan: attention priced at E[sum(l^2) / S^2], the spread as data imbalance.
#include <gtest/gtest.h>

#include "models/accounting/memory_estimate.hpp"
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

TrainingEstimate estimate_with(const std::string& extra_keys, Workload* out = nullptr) {
  Diagnostics diag;
  const ModelSpec m = load_model_spec(resolve_input("llama-3-8b", "models", "--model"), "llama-3-8b", diag);
  ClusterSpec c = load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
  c.fleet = FleetSpec{};  // no fleet: only the documents make imbalance
  const TrainPlan plan = load_train_plan(
      R"({"tensor_model_parallel_size": 2, "pipeline_model_parallel_size": 2, "micro_batch_size": 1,
          "global_batch_size": 256, "seq_length": 16384, "bf16": true)" + extra_keys + "}",
      diag);
  diag.throw_if_errors();
  const ParallelLayout l = derive_layout(m, plan, &c, 64, diag);
  const Workload w = lower_training(m, plan, l, c);
  if (out) *out = w;
  const CostModel costs(load_profile(config_dir() + "/profiles/h100.json"), "h100", c);
  return estimate_training(w, costs, c, estimate_memory(m, plan, l));
}

TEST(DocumentLengths, ShortDocumentsCutAttentionAndTheirSpreadIsImbalance) {
  const TrainingEstimate full = estimate_with("");
  Workload w;
  const TrainingEstimate packed = estimate_with(
      R"(, "reset_attention_mask": true, "document_lengths": {"tokens": [500, 6000], "weights": [3, 1], "source": "test"})", &w);
  ASSERT_TRUE(w.documents.has_value());
  EXPECT_LT(w.packed_attention.mean, 0.5);
  EXPECT_GT(w.packed_attention.cv, 0.1);
  // Attention at E[r]: the stage's attention time shrinks by that ratio.
  EXPECT_NEAR(packed.stages[0].attention_s, full.stages[0].attention_s * w.packed_attention.mean,
              1e-9 * full.stages[0].attention_s);
  EXPECT_LT(packed.step_time_s, full.step_time_s);
  EXPECT_GT(packed.document_attention_share, 0.0);
  EXPECT_EQ(full.breakdown.imbalance_s, 0.0);
  EXPECT_GT(packed.breakdown.imbalance_s, 0.0);
  // Ablated, no imbalance; without the mask, the histogram is an error (checked by the CLI fixtures).
}

}  // namespace
}  // namespace clustersim
