// Plans from JSON and from pasted Megatron-LM command lines.
#include <gtest/gtest.h>

#include "models/inputs/train_plan.hpp"

namespace clustersim {
namespace {

TEST(TrainPlan, MegatronArgsWithQuotesContinuationsAndOldSpellings) {
  Diagnostics diag;
  TrainPlan p = train_plan_from_megatron_args(
      "python pretrain_gpt.py \\\n  --tensor-model-parallel-size=8 --pipeline-model-parallel-size 4"
      " --num-layers-per-virtual-pipeline-stage 2 --checkpoint-activations"
      " --activations-checkpoint-method uniform --micro-batch-size 1 --global-batch-size 512"
      " --seq-length 2048 --fp16 --data-path \"my data\" --DDP-impl local",
      diag);
  EXPECT_EQ(p.tp(), 8);
  EXPECT_EQ(p.pp(), 4);
  EXPECT_EQ(p.num_layers_per_virtual_pipeline_stage, 2);
  EXPECT_EQ(p.recompute_granularity, Recompute::kFull);
  EXPECT_EQ(p.recompute_method, RecomputeMethod::kUniform);
  EXPECT_EQ(p.recompute_num_layers, 1);
  EXPECT_EQ(p.precision, Precision::kFp16);
  ASSERT_EQ(diag.warnings().size(), 1u);
  EXPECT_NE(diag.warnings()[0].message.find("--data-path --DDP-impl"), std::string::npos)
      << diag.warnings()[0].message;
}

TEST(TrainPlan, DefaultsFollowMegatron) {
  Diagnostics diag;
  TrainPlan p = load_train_plan(R"({"seq_length": 4096, "tensor_model_parallel_size": 4,
                                    "use_distributed_optimizer": true})",
                                diag);
  EXPECT_EQ(p.etp(), 4);  // expert TP defaults to TP
  EXPECT_EQ(p.data_parallel_sharding_strategy, DpSharding::kOptim);
  EXPECT_EQ(rank_order_string(p.rank_order), "tp-cp-ep-dp-pp");
  EXPECT_EQ(p.micro_batch_size, 1);
}

TEST(TrainPlan, GradientAndOptimizerPrecisionFromMegatronArgs) {
  Diagnostics diag;
  TrainPlan p = train_plan_from_megatron_args(
      "--seq-length 4096 --bf16 --use-distributed-optimizer --grad-reduce-in-bf16"
      " --use-precision-aware-optimizer --exp-avg-dtype bf16 --exp-avg-sq-dtype fp8 --main-params-dtype fp16",
      diag);
  EXPECT_TRUE(diag.warnings().empty());
  EXPECT_TRUE(p.grad_reduce_in_bf16);
  EXPECT_TRUE(p.use_precision_aware_optimizer);
  EXPECT_EQ(p.exp_avg_bytes, 2.0);
  EXPECT_EQ(p.exp_avg_sq_bytes, 1.0);
  EXPECT_EQ(p.main_params_bytes, 2.0);
  EXPECT_EQ(p.main_grads_bytes, 4.0);  // not given: fp32
}

TEST(TrainPlan, OptimizerDtypesNeedThePrecisionAwareOptimizer) {
  Diagnostics diag;
  EXPECT_THROW(load_train_plan(R"({"seq_length": 4096, "bf16": true, "exp_avg_dtype": "bf16"})", diag),
               InputErrors);
  Diagnostics contradiction;
  EXPECT_THROW(load_train_plan(R"({"seq_length": 4096, "bf16": true, "use_precision_aware_optimizer": true,
                                   "main_grads_dtype": "bf16", "accumulate_allreduce_grads_in_fp32": true})",
                               contradiction),
               InputErrors);
}

TEST(TrainPlan, CustomRankOrder) {
  Diagnostics diag;
  TrainPlan p = load_train_plan(R"({"seq_length": 4096, "rank_order": "tp-dp-cp-ep-pp"})", diag);
  EXPECT_EQ(rank_order_string(p.rank_order), "tp-dp-cp-ep-pp");
}

}  // namespace
}  // namespace clustersim
