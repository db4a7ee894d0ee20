// The CPU replay of a Workload (calibrate/workload_replay.hpp) on hand-built workloads: what it
// refuses, that 1F1B between stage threads completes for any micro-batch count (no deadlock),
// and what it reports.
#include <gtest/gtest.h>

#include <stdexcept>

#include "calibrate/workload_replay.hpp"

namespace clustersim::calibrate {
namespace {

WorkOp gemm(Phase phase, std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t count = 1) {
  WorkOp op;
  op.kind = OpKind::kGemm;
  op.phase = phase;
  op.name = "gemm";
  op.gemm = {m, n, k, 1};
  op.count = count;
  return op;
}

WorkOp collective(CollectiveKind kind, Group group, int ranks, double bytes) {
  WorkOp op;
  op.kind = OpKind::kCollective;
  op.name = "collective";
  op.collective = kind;
  op.group = group;
  op.group_ranks = ranks;
  op.bytes = bytes;
  return op;
}

// TP x PP x DP ranks, every stage: forward two GEMMs + TP all-reduce + memory-bound op,
// backward four GEMMs, step: DP all-reduce.
Workload small_workload(std::int64_t tp, std::int64_t pp, std::int64_t dp, std::int64_t micro_batches) {
  Workload w;
  w.layout.tp = tp;
  w.layout.pp = pp;
  w.layout.dp = dp;
  w.layout.world = tp * pp * dp;
  w.layout.num_microbatches = micro_batches;
  w.p2p_bytes = 64 * 64 * 4;
  for (std::int64_t p = 0; p < pp; ++p) {
    StageProgram s;
    s.pp_rank = p;
    s.forward.push_back(gemm(Phase::kForward, 64, 64, 64, 2));
    s.forward.push_back(collective(CollectiveKind::kAllReduce, Group::kTp, static_cast<int>(tp), 64 * 64 * 4));
    WorkOp memory;
    memory.kind = OpKind::kMemoryBound;
    memory.bytes = 1 << 16;
    s.forward.push_back(memory);
    s.backward.push_back(gemm(Phase::kBackward, 64, 64, 64, 4));
    s.step.push_back(collective(CollectiveKind::kAllReduce, Group::kDp, static_cast<int>(dp), 4096 * 4));
    w.stages.push_back(s);
  }
  return w;
}

TEST(WorkloadReplay, RunsEveryParallelismAndReportsStages) {
  ReplayOptions o;
  o.warmup_iterations = 0;
  o.iterations = 2;
  for (auto [tp, pp, dp, mb] : {std::tuple{2, 1, 1, 2}, {1, 2, 1, 4}, {1, 1, 2, 2}, {1, 4, 1, 1}, {2, 2, 2, 3}}) {
    SCOPED_TRACE(testing::Message() << "tp " << tp << " pp " << pp << " dp " << dp << " mb " << mb);
    const ReplayResult r = replay_workload(small_workload(tp, pp, dp, mb), o);
    EXPECT_EQ(r.ranks, tp * pp * dp);
    EXPECT_EQ(r.samples_s.size(), 2u);
    EXPECT_GT(r.step_time_s, 0.0);
    ASSERT_EQ(r.stages.size(), static_cast<std::size_t>(pp));
    for (const auto& s : r.stages) {
      EXPECT_GT(s.forward_s, 0.0);
      EXPECT_GT(s.backward_s, 0.0);
      EXPECT_GT(s.gemm_s, 0.0);
      EXPECT_LE(s.finish_s, 2 * r.samples_s.back() + 1.0);
    }
  }
}

TEST(WorkloadReplay, RefusesWhatItCannotRun) {
  auto refused = [](Workload w) {
    EXPECT_THROW(check_replayable(w), std::invalid_argument);
  };
  Workload cp = small_workload(1, 1, 1, 1);
  cp.layout.cp = 2;
  refused(cp);
  Workload interleaved = small_workload(1, 2, 1, 2);
  interleaved.layout.virtual_stages = 2;
  refused(interleaved);
  refused(small_workload(2, 2, 4, 1));  // 16 ranks
  Workload moe = small_workload(1, 1, 1, 1);
  WorkOp a2a;
  a2a.kind = OpKind::kMoeAllToAll;
  moe.stages[0].forward.push_back(a2a);
  refused(moe);
  Workload broadcast = small_workload(2, 1, 1, 1);
  broadcast.stages[0].forward.push_back(collective(CollectiveKind::kBroadcast, Group::kTp, 2, 1024));
  refused(broadcast);
  Workload mismatch = small_workload(2, 1, 1, 1);
  mismatch.stages[0].forward.push_back(collective(CollectiveKind::kAllGather, Group::kTp, 4, 1024));
  refused(mismatch);
  EXPECT_NO_THROW(check_replayable(small_workload(2, 2, 2, 1)));
}

}  // namespace
}  // namespace clustersim::calibrate
