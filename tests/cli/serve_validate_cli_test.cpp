// serve-validate end to end: the published TensorRT-LLM offline-throughput dev set through the
// serve engine (docs/serve.md, "Check against published engine numbers"). Pins today's figures
// as a regression guard; the target (MAPE <= 10 % for dense models at TP 1-8 and for one
// MoE model) is NOT met: dense 15.5 %, MoE 22.8 %.
#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <nlohmann/json.hpp>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::string kSource = CLUSTERSIM_SOURCE_DIR;
const std::string kTable = kSource + "/configs/measurements/serving/trtllm-1.0-offline-throughput.csv";

nlohmann::json run_json(std::vector<std::string> extra) {
  std::vector<std::string> args = {"serve-validate", kTable, "--format", "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const CommandResult r = run_clustersim(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(ServeValidateCli, DevSetMapeIsPinnedAndAboveTheTenPercentTarget) {
  const nlohmann::json j = run_json({});
  ASSERT_EQ(j["rows"].size(), 77u);
  const double dense = j["mape_by_kind"]["dense"]["mape"], moe = j["mape_by_kind"]["MoE"]["mape"];
  EXPECT_NEAR(dense, 0.155, 0.005);
  EXPECT_NEAR(moe, 0.228, 0.005);
  EXPECT_NEAR(j["mean_error"].get<double>(), 0.149, 0.005);  // optimistic on average
  // The acceptance target is not met yet; when a change meets it, update docs/serve.md and this test.
  EXPECT_GT(dense, 0.10);
  EXPECT_GT(moe, 0.10);
  // A few rows across models, GPUs and TP degrees, with trtllm-bench's derived limits.
  std::map<std::string, std::tuple<double, int, int>> pinned = {
      {"trtllm-1.0 llama-3.1-8b h100 tp1 128/2048", {20952, 640, 2048}},
      {"trtllm-1.0 llama-3.3-70b h100 tp2 1000/1000", {5050, 384, 2048}},
      {"trtllm-1.0 llama-3.1-405b h100 tp8 128/128", {4427, 4096, 8192}},
      {"trtllm-1.0 qwen3-235b-a22b h200 tp8 2048/128", {5349, 2304, 32768}}};
  int found = 0;
  for (const auto& row : j["rows"]) {
    auto it = pinned.find(row["id"].get<std::string>());
    if (it == pinned.end()) continue;
    ++found;
    const auto& [predicted, batch, tokens] = it->second;
    EXPECT_NEAR(row["predicted"].get<double>(), predicted, 0.005 * predicted) << row["id"];
    EXPECT_EQ(row["max_batch_size"].get<int>(), batch) << row["id"];
    EXPECT_EQ(row["max_num_tokens"].get<int>(), tokens) << row["id"];
    EXPECT_EQ(row["preemptions"].get<int>(), 0) << row["id"];  // GUARANTEED_NO_EVICT
  }
  EXPECT_EQ(found, 4);
}

// --policies vllm gives the figures of the earlier hand comparison (docs/serve.md): vLLM's
// scheduler with 8192 tokens / 2048 sequences, which preempts by recompute.
TEST(ServeValidateCli, VllmPoliciesReproduceTheHandComparison) {
  const nlohmann::json j = run_json({"--policies", "vllm", "--only", "405b h100 tp8 128/128"});
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_NEAR(j["rows"][0]["predicted"].get<double>(), 4341, 1.0);
}

TEST(ServeValidateCli, OnlyMatchingNothingIsAUsageError) {
  const CommandResult r = run_clustersim({"serve-validate", kTable, "--only", "no such row"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("matches no row"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clustersim::test
