// The house keeps its shape: every #include in the project points the allowed way
// (docs/architecture.md), names its file from the repository root, and the rule itself rejects
// the wrong directions it exists for.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/architecture/include_rules.hpp"

namespace fs = std::filesystem;
using clustersim::architecture::include_violation;

TEST(IncludeRules, AllowsTheDirectionsOfTheMap) {
  EXPECT_FALSE(include_violation("models/planning/plan_search.cpp", "models/lowering/workload.hpp"));
  EXPECT_FALSE(include_violation("models/cost/cost_model.hpp", "models/inputs/cluster_spec.hpp"));
  EXPECT_FALSE(include_violation("sim/training/training_replay.cpp", "sim/platform/network_simulation.hpp"));
  EXPECT_FALSE(include_violation("sim/serving/serve_engine.hpp", "traces/chrome_trace_writer.hpp"));
  EXPECT_FALSE(include_violation("sim/platform/simgrid_adapter.cpp", "simgrid/s4u.hpp"));
  EXPECT_FALSE(include_violation("calibrate/cuda_backend.cpp", "kernels/gemm_run.hpp"));
  EXPECT_FALSE(include_violation("kernels/cublaslt_gemm.cu", "cublasLt.h"));
  EXPECT_FALSE(include_violation("tools/simulate_command.cpp", "sim/training/training_replay.hpp"));
  EXPECT_FALSE(include_violation("models/inputs/model_spec.cpp", "nlohmann/json.hpp"));
  EXPECT_FALSE(include_violation("python/clustersim_module.cpp", "tools/command_line.hpp"));
  EXPECT_FALSE(include_violation("python/clustersim_module.cpp", "pybind11/pybind11.h"));
  EXPECT_FALSE(include_violation("tools/sweep/mpi_module.cpp", "mpi.h"));
}

TEST(IncludeRules, RejectsADeliberatelyWrongInclude) {
  EXPECT_TRUE(include_violation("models/cost/cost_model.cpp", "sim/platform/rail_fabric.hpp"));
  EXPECT_TRUE(include_violation("models/inputs/train_plan.cpp", "tools/cli_common.hpp"));
  EXPECT_TRUE(include_violation("models/inputs/train_plan.cpp", "models/planning/training_estimate.hpp"));
  EXPECT_TRUE(include_violation("models/cost/cost_model.cpp", "models/lowering/workload.hpp"));
  EXPECT_TRUE(include_violation("traces/kineto_trace_reader.cpp", "calibrate/profile_builder.hpp"));
  EXPECT_TRUE(include_violation("sim/platform/rail_fabric.cpp", "sim/training/training_replay.hpp"));
  EXPECT_TRUE(include_violation("sim/serving/serve_engine.cpp", "sim/training/training_replay.hpp"));
  EXPECT_TRUE(include_violation("sim/training/training_replay.cpp", "simgrid/s4u.hpp"));
  EXPECT_TRUE(include_violation("sim/platform/network_simulation.cpp", "simgrid/s4u.hpp"));
  EXPECT_TRUE(include_violation("models/cost/cost_model.cpp", "cuda_runtime_api.h"));
  EXPECT_TRUE(include_violation("sim/platform/rail_fabric.cpp", "calibrate/backend.hpp"));
  EXPECT_TRUE(include_violation("models/cost/cost_model.cpp", "models/cost_model.hpp"));
  EXPECT_TRUE(include_violation("tools/sweep/sweep_runner.cpp", "python/clustersim_module.hpp"));
  EXPECT_TRUE(include_violation("tools/sweep/sweep_runner.cpp", "mpi.h"));
  EXPECT_TRUE(include_violation("tools/command_line.cpp", "pybind11/pybind11.h"));
}

TEST(IncludeDirection, EveryProjectIncludeFollowsTheMap) {
  const fs::path root = CLUSTERSIM_SOURCE_DIR;
  const std::regex include_line(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  const std::vector<std::string> layers = {"models", "traces", "calibrate", "kernels", "sim", "tools", "tests", "python"};
  std::size_t files = 0;
  std::vector<std::string> problems;
  for (const auto& layer : layers) {
    for (const auto& entry : fs::recursive_directory_iterator(root / layer)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".hpp" && ext != ".cpp" && ext != ".cu" && ext != ".cuh")) continue;
      if (entry.path().string().find("/data/") != std::string::npos) continue;
      const std::string includer = fs::relative(entry.path(), root).generic_string();
      ++files;
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        std::smatch match;
        if (!std::regex_search(line, match, include_line)) continue;
        const std::string included = match[2];
        const std::string where = includer + ":" + std::to_string(number) + ": " + included + ": ";
        if (match[1] == "\"" && !fs::exists(root / included))
          problems.push_back(where + "a quoted include names its file from the repository root");
        if (auto why = include_violation(includer, included)) problems.push_back(where + *why);
      }
    }
  }
  EXPECT_GT(files, 250u);
  for (const auto& problem : problems) ADD_FAILURE() << problem;
}
