// End-to-end runs of `clustersim explain` on presets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::vector<std::string> kDefaultRun = {
    "explain", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus", "16384",
    "--plan", "llama-3.1-405b-16k", "--format", "json"};

TEST(ExplainCli, DefaultRunReportsEveryKey) {
  CommandResult r = run_clustersim(kDefaultRun);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"params_total", "params_active", "flops_per_token",
                          "memory_per_gpu_bytes", "fits_in_memory"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"weights", "grads", "optimizer", "activations", "total"}) {
    EXPECT_TRUE(j["memory_per_gpu_bytes"].contains(key)) << key;
  }
  EXPECT_NEAR(j["params_total"].get<double>(), 405.85e9, 0.01e9);
  EXPECT_EQ(j["plan"]["data_parallel_size"], 128);
  EXPECT_EQ(j["plan"]["num_microbatches"], 16);
  // bf16 with Megatron's defaults: FP32 main gradients, FP32 master copy and moments.
  EXPECT_EQ(j["plan"]["bytes_per_parameter"],
            (nlohmann::json{{"weights", 2.0}, {"grads", 4.0}, {"optimizer", 12.0}}));
  EXPECT_TRUE(j["fits_in_memory"].get<bool>());
  // Weights: 405.85B / (TP 8 * PP 16) parameters, 2 bytes each, within the stage imbalance.
  double weights = j["memory_per_gpu_bytes"]["weights"].get<double>();
  EXPECT_NEAR(weights, 2 * 405.85e9 / 128, 0.1 * 2 * 405.85e9 / 128);
}

TEST(ExplainCli, SameInputSameOutput) {
  CommandResult a = run_clustersim(kDefaultRun);
  CommandResult b = run_clustersim(kDefaultRun);
  EXPECT_EQ(a.out, b.out);
}

TEST(ExplainCli, MegatronArgsEqualThePlanFile) {
  std::vector<std::string> args = {
      "explain", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus", "16384",
      "--format", "json", "--from-megatron-args",
      "torchrun --nproc_per_node 8 pretrain_gpt.py \\\n --tensor-model-parallel-size 8 "
      "--pipeline-model-parallel-size 16 --decoder-first-pipeline-num-layers 7 "
      "--decoder-last-pipeline-num-layers 7 --micro-batch-size 1 --global-batch-size 2048 "
      "--seq-length 8192 --sequence-parallel --recompute-granularity full "
      "--recompute-method uniform --recompute-num-layers 1 --use-distributed-optimizer "
      "--overlap-grad-reduce --overlap-param-gather --tp-comm-overlap --bf16 --lr 8e-5 "
      "--data-path '/data/my corpus'"};
  CommandResult from_args = run_clustersim(args);
  ASSERT_EQ(from_args.exit_code, 0) << from_args.err;
  EXPECT_NE(from_args.err.find("were ignored: --nproc_per_node --lr --data-path"), std::string::npos)
      << from_args.err;
  CommandResult from_file = run_clustersim(kDefaultRun);
  auto a = nlohmann::json::parse(from_args.out), b = nlohmann::json::parse(from_file.out);
  a["plan"].erase("source");
  b["plan"].erase("source");
  EXPECT_EQ(a, b);
}

TEST(ExplainCli, ModelOnlyTable) {
  CommandResult r = run_clustersim({"explain", "--model", "deepseek-v3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("total 671.03 B, active 37.55 B (1 MTP layer(s) excluded)"),
            std::string::npos)
      << r.out;
}

TEST(ExplainCli, HelpHasAnExample) {
  CommandResult r = run_clustersim({"explain", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
}

TEST(ExplainCli, SelectiveRecomputeOfTheDefaultPlanDoesNotFitWithSmallerMemory) {
  // A 40 GB A100-like cluster inline: the default plan with full recomputation still fits.
  CommandResult r = run_clustersim(
      {"explain", "--model", "llama-3.1-405b", "--cluster", "a100-hdr", "--gpus", "16384",
       "--plan",
       R"({"tensor_model_parallel_size": 8, "pipeline_model_parallel_size": 2,
           "micro_batch_size": 1, "seq_length": 8192, "bf16": true})",
       "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["fits_in_memory"].get<bool>());  // 405B over 16 GPUs cannot fit in 80 GB
}

}  // namespace
}  // namespace clustersim::test
