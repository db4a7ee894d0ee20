// Per-GPU memory of whole plans: optimizer sharding and pipeline in-flight micro-batches.
#include <gtest/gtest.h>

#include <array>

#include "models/accounting/memory_estimate.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "tests/models/inputs/test_models.hpp"

namespace clustersim {
namespace {

TrainPlan plan_with(std::int64_t tp, std::int64_t pp, std::int64_t gbs) {
  TrainPlan p;
  p.source = "plan.json";
  p.tensor_model_parallel_size = tp;
  p.pipeline_model_parallel_size = pp;
  p.micro_batch_size = 1;
  p.global_batch_size = gbs;
  p.seq_length = 2048;
  p.precision = Precision::kBf16;
  return p;
}

TEST(MemoryEstimate, DistributedOptimizerShardsTwelveBytesPerParameter) {
  ModelSpec m = test::korthikanti_gpt(4096, 32, 8);
  Diagnostics diag;
  TrainPlan p = plan_with(2, 1, 64);
  ParallelLayout L = derive_layout(m, p, nullptr, 16, diag);  // DP = 8
  MemoryEstimate plain = estimate_memory(m, p, L);
  p.use_distributed_optimizer = true;
  p.data_parallel_sharding_strategy = DpSharding::kOptim;
  MemoryEstimate zero1 = estimate_memory(m, p, L);
  const double params = static_cast<double>(plain.peak().dense_parameters);
  EXPECT_DOUBLE_EQ(plain.peak().bytes.weights, 2 * params);
  EXPECT_DOUBLE_EQ(plain.peak().bytes.grads, 4 * params);
  EXPECT_DOUBLE_EQ(plain.peak().bytes.optimizer, 12 * params);
  EXPECT_DOUBLE_EQ(zero1.peak().bytes.optimizer, 12 * params / 8);
  p.data_parallel_sharding_strategy = DpSharding::kOptimGradsParams;
  MemoryEstimate zero3 = estimate_memory(m, p, L);
  EXPECT_DOUBLE_EQ(zero3.peak().bytes.weights, 2 * params / 8);
  EXPECT_DOUBLE_EQ(zero3.peak().bytes.grads, 4 * params / 8);
}

// Megatron-LM's precision flags: bf16 keeps FP32 gradients unless grad_reduce_in_bf16; fp16
// keeps fp16 gradients (and an FP32 copy in the optimizer) unless
// accumulate_allreduce_grads_in_fp32; the precision-aware optimizer sizes master copy and moments.
TEST(MemoryEstimate, BytesPerParameterFollowMegatronsPrecisionFlags) {
  auto bytes = [](void (*set)(TrainPlan&)) {
    TrainPlan p = plan_with(1, 1, 8);
    set(p);
    BytesPerParameter b = bytes_per_parameter(p);
    return std::array<double, 4>{b.weights, b.grads, b.optimizer, adam_step_bytes_per_parameter(b, !p.is_16bit())};
  };
  using A = std::array<double, 4>;
  EXPECT_EQ(bytes([](TrainPlan&) {}), (A{2, 4, 12, 30}));
  EXPECT_EQ(bytes([](TrainPlan& p) { p.grad_reduce_in_bf16 = true; }), (A{2, 2, 12, 28}));
  EXPECT_EQ(bytes([](TrainPlan& p) { p.precision = Precision::kFp16; }), (A{2, 2, 16, 36}));
  EXPECT_EQ(bytes([](TrainPlan& p) {
              p.precision = Precision::kFp16;
              p.accumulate_allreduce_grads_in_fp32 = true;
            }),
            (A{2, 4, 12, 30}));
  EXPECT_EQ(bytes([](TrainPlan& p) { p.precision = Precision::kFp32; }), (A{4, 4, 8, 28}));
  EXPECT_EQ(bytes([](TrainPlan& p) {
              p.use_precision_aware_optimizer = true;
              p.main_grads_bytes = 2;
              p.main_params_bytes = 2;
              p.exp_avg_bytes = 2;
              p.exp_avg_sq_bytes = 1;
            }),
            (A{2, 2, 5, 14}));
}

TEST(MemoryEstimate, OneFOneBFirstStageHoldsPipelineDepthMicrobatches) {
  ModelSpec m = test::korthikanti_gpt(4096, 32, 16);
  Diagnostics diag;
  TrainPlan p = plan_with(1, 4, 32);
  ParallelLayout L = derive_layout(m, p, nullptr, 8, diag);  // DP 2, 16 micro-batches
  MemoryEstimate e = estimate_memory(m, p, L);
  ASSERT_EQ(e.stages.size(), 4u);
  for (std::int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(e.stages[static_cast<std::size_t>(r)].inflight_microbatches, 4 - r);
  }
}

// Korthikanti et al. 2022, Section 4.2.3: the interleaved schedule keeps L(1 + (p-1)/(p m))
// layers' activations on the first stage, i.e. (1 + (p-1)/(p m)) * p micro-batches of L/p layers.
TEST(MemoryEstimate, InterleavedFirstStageMatchesKorthikanti) {
  ModelSpec m = test::korthikanti_gpt(4096, 32, 32);
  Diagnostics diag;
  TrainPlan p = plan_with(1, 4, 64);
  p.num_virtual_stages_per_pipeline_rank = 2;
  ParallelLayout L = derive_layout(m, p, nullptr, 4, diag);
  MemoryEstimate e = estimate_memory(m, p, L);
  const double pp = 4, v = 2;
  EXPECT_DOUBLE_EQ(e.stages[0].inflight_microbatches, pp * (1 + (pp - 1) / (pp * v)));
}

}  // namespace
}  // namespace clustersim
