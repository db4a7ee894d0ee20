// Same input, same stdout bytes: every subcommand runs twice on a small input and the two
// outputs must be identical (wall-clock timings belong on stderr). Table and JSON both.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::string kSource = CLUSTERSIM_SOURCE_DIR;
const std::string kData = CLUSTERSIM_TEST_DATA_DIR;
const std::string kSmallPlan =
    "--micro-batch-size 1 --global-batch-size 32 --seq-length 4096 --bf16 "
    "--pipeline-model-parallel-size 2 --tensor-model-parallel-size 2";

struct Invocation {
  std::string name;
  std::vector<std::string> args;
};

std::vector<Invocation> with_json(const std::string& name, std::vector<std::string> args) {
  std::vector<std::string> json = args;
  json.insert(json.end(), {"--format", "json"});
  return {{name, std::move(args)}, {name + "_json", std::move(json)}};
}

std::vector<Invocation> invocations() {
  std::vector<Invocation> out;
  auto add = [&](std::vector<Invocation> more) { out.insert(out.end(), more.begin(), more.end()); };
  const std::vector<std::string> training = {"--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "16",
                                             "--from-megatron-args", kSmallPlan};
  auto command = [&](const std::string& sub) {
    std::vector<std::string> a = {sub};
    a.insert(a.end(), training.begin(), training.end());
    return a;
  };
  add(with_json("explain", command("explain")));
  add(with_json("estimate", command("estimate")));
  add(with_json("simulate", command("simulate")));
  add(with_json("search", {"search", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "16",
                           "--global-batch-size", "32", "--seq-length", "4096", "--top", "3"}));
  add(with_json("serve", {"serve", "--model", kSource + "/configs/serve/opt-13b.json", "--cluster", "a100-hdr",
                          "--profile", "a100", "--deployment",
                          kSource + "/configs/serve/distserve-opt-13b-deployment.json", "--workload",
                          kSource + "/configs/serve/sharegpt-like.json", "--slo-ttft", "0.2", "--slo-tpot", "0.1"}));
  add(with_json("serve_flows", {"serve", "--model", "llama-3-70b", "--cluster", "a100-hdr", "--deployment",
                                kSource + "/configs/serve/llama-3-70b-pd-64.json", "--workload",
                                kSource + "/configs/serve/azure-conv-2023-like.json", "--rate", "20", "--network",
                                "flows"}));
  add(with_json("whatif", {"whatif", "--trace", kData + "/whatif/two-stage.csv", "--meta",
                           kData + "/whatif/two-stage.yaml"}));
  add(with_json("calibrate_report", {"calibrate", "report", "h800"}));
  out.push_back({"calibrate_fit", {"calibrate", "fit", kSource + "/configs/measurements/h800/deepgemm-fp8.csv",
                                   "--cluster", "h800-roce"}});
  return out;
}

void PrintTo(const Invocation& c, std::ostream* os) { *os << c.name; }

class SameInputSameBytes : public ::testing::TestWithParam<Invocation> {};

TEST_P(SameInputSameBytes, TwoRunsPrintIdenticalStdout) {
  const Invocation& c = GetParam();
  const CommandResult first = run_clustersim(c.args);
  const CommandResult second = run_clustersim(c.args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  ASSERT_FALSE(first.out.empty());
  EXPECT_EQ(first.out, second.out);
}

INSTANTIATE_TEST_SUITE_P(Subcommands, SameInputSameBytes, ::testing::ValuesIn(invocations()),
                         [](const auto& info) { return info.param.name; });

// The one validate case that the simulate-mode test uses (Korthikanti 22B), in both modes.
TEST(SameInputSameBytes, ValidateBothModes) {
  std::ifstream in(kSource + "/configs/validation/dev-set.json");
  const nlohmann::json dev = nlohmann::json::parse(in);
  const nlohmann::json one = {{"cases", nlohmann::json::array({dev["cases"][10]})}};
  const std::string file = write_temp("determinism-one-case.json", one.dump());
  for (const std::string mode : {"estimate", "simulate"}) {
    const std::vector<std::string> args = {"validate", file, "--mode", mode, "--format", "json"};
    const CommandResult first = run_clustersim(args);
    const CommandResult second = run_clustersim(args);
    ASSERT_FALSE(first.out.empty()) << first.err;
    EXPECT_EQ(first.exit_code, second.exit_code) << mode;
    EXPECT_EQ(first.out, second.out) << mode;
  }
}

}  // namespace
}  // namespace clustersim::test
