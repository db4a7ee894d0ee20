// The three published straggler traces (../shared/reference/straggler-traces): our replay must
// reproduce the recorded step times and the study's slowdowns; skipped when the data is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "traces/straggler_job_meta_reader.hpp"
#include "traces/straggler_trace_reader.hpp"
#include "sim/whatif/straggler_whatif.hpp"
#include "sim/whatif/trace_dependency_graph.hpp"
#include "sim/whatif/trace_replay.hpp"

namespace clustersim::sim {
namespace {

const std::string kDir = CLUSTERSIM_STRAGGLER_TRACES_DIR;

struct Published {
  std::string name;
  std::string trace_file;
  double slowdown;          // blocking_slowdown of result-*.json
  double launch_slowdown;   // launch_slowdown of result-*.json
  double last_stage_share;  // M_S of ms-*.json
  std::string top_stage;    // first of blocking_decompose_by_stage
  std::string top_dp_rank;  // first of blocking_decompose_by_dp_rank
};

void PrintTo(const Published& p, std::ostream* os) { *os << p.name; }

class StragglerReference : public ::testing::TestWithParam<Published> {};

TEST_P(StragglerReference, ReproducesThePublishedSlowdown) {
  const Published& p = GetParam();
  const std::string trace_path = kDir + "/" + p.trace_file;
  if (!std::filesystem::exists(trace_path)) {
    GTEST_SKIP() << "reference trace not found: " << trace_path;
  }
  auto trace = traces::read_straggler_trace(trace_path);
  auto meta = traces::read_straggler_job_meta(kDir + "/meta-" + p.name + ".yaml");
  auto graph = TraceDependencyGraph::build(trace, meta);
  auto layout = TraceReplayLayout::build(trace, meta, graph);
  StragglerWhatIf whatif(graph, layout);
  StragglerWhatIfResult r = whatif.analyze({});
  // Acceptance: S within 2 % of the study, every step replayed within 1 %.
  EXPECT_NEAR(r.slowdown / p.slowdown, 1.0, 0.02);
  EXPECT_LT(r.baseline_max_relative_error, 0.01);
  // In fact the same model reproduces the study to float32 rounding.
  EXPECT_NEAR(r.slowdown, p.slowdown, 1e-4);
  EXPECT_NEAR(r.launch_slowdown, p.launch_slowdown, 1e-4);
  EXPECT_NEAR(r.last_stage_share, p.last_stage_share, 1e-3);
  EXPECT_EQ(r.by_stage.front().label, p.top_stage);
  EXPECT_EQ(r.by_dp_rank.front().label, p.top_dp_rank);
}

INSTANTIATE_TEST_SUITE_P(
    Published, StragglerReference,
    ::testing::Values(
        // AR: one worker (rank 0: dp_rank 0, stage 0) slowed artificially.
        Published{"AR", "trace-AR.csv.gz", 1.9730450967262543, 1.0067506609199466,
                  -0.00121196404622606, "stage 0", "dp_rank 0"},
        Published{"SE", "trace-SE.csv.gz", 1.5373613711484118, 1.0051223070910291,
                  0.6877108929755429, "stage 1", "dp_rank 8"},
        // ST: the last stage is long by design.
        Published{"ST", "trace-ST.csv", 1.1787021836556841, 1.01921617557204,
                  1.2193563788811714, "stage 3", "dp_rank 1"}),
    [](const auto& info) { return info.param.name; });

TEST(StragglerReferenceAR, AttributionNamesTheSlowedWorker) {
  const std::string trace_path = kDir + "/trace-AR.csv.gz";
  if (!std::filesystem::exists(trace_path)) GTEST_SKIP() << "reference trace not found: " << trace_path;
  auto trace = traces::read_straggler_trace(trace_path);
  auto meta = traces::read_straggler_job_meta(kDir + "/meta-AR.yaml");
  auto graph = TraceDependencyGraph::build(trace, meta);
  auto layout = TraceReplayLayout::build(trace, meta, graph);
  StragglerWhatIf whatif(graph, layout);
  // Giving rank 0 ideal durations removes (nearly) all of the slowdown.
  WhatIfScenario fix{"rank 0 not slow", {}};
  fix.changes.push_back({});
  fix.changes[0].select.rank = 0;
  StragglerWhatIfResult r = whatif.analyze({fix});
  EXPECT_EQ(r.by_worker.front().rank, 0);
  EXPECT_NEAR(r.by_worker.front().slowdown, 1.979, 1e-3);
  EXPECT_GT(r.scenarios[0].recovered, 0.9);
  EXPECT_EQ(r.by_optype.front().label, "backward-compute");
  EXPECT_NEAR(r.by_optype.front().slowdown, 1.5805, 1e-3);
}

}  // namespace
}  // namespace clustersim::sim
