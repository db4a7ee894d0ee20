#pragma once
// Runs a lowered training iteration (models/lowering/workload.hpp) for real on this machine's cores: one
// std::thread per rank of the plan, real Eigen GEMMs of the lowered shapes, the CPU attention
// reference, memory-bound operations as memcpy over buffers of the lowered bytes, collectives
// between threads (ThreadCommunicator) with the lowered nccl-tests sizes, pipeline transfers
// through per-pair mailboxes in 1F1B order, and the once-per-step operations (data-parallel
// gradient reduction, optimizer) at the end. The measured counterpart of the estimator and the
// SimGrid replay: `clustersim calibrate replay --backend cpu` (docs/calibration.md).
#include <cstdint>
#include <string>
#include <vector>

#include "models/lowering/workload.hpp"

namespace clustersim::calibrate {

struct ReplayOptions {
  int warmup_iterations = 1;
  int iterations = 5;
};

// One pipeline stage, timed on its first rank (TP and DP rank 0); medians over the timed
// iterations.
struct StageReplayTiming {
  std::int64_t pp_rank = 0;
  double forward_s = 0;   // all micro-batches' forward passes, waits for inputs excluded
  double backward_s = 0;  // all micro-batches' backward passes, waits for gradients excluded
  double step_s = 0;      // gradient reduction, parameter gather and optimizer
  double wait_s = 0;      // blocked on pipeline receives
  double finish_s = 0;    // from the iteration's start to this rank's last operation
  // Of forward + backward + step, by operation kind (pipeline sends are in neither).
  double gemm_s = 0, attention_s = 0, memory_bound_s = 0, collective_s = 0;
};

struct ReplayResult {
  int ranks = 0;
  double step_time_s = 0;          // median of samples_s
  std::vector<double> samples_s;   // timed iterations, barrier to barrier on rank 0
  std::vector<StageReplayTiming> stages;
};

// Throws std::invalid_argument naming what the CPU replay does not execute (interleaved
// pipelines, context or expert parallelism, MoE, collectives other than all-reduce / all-gather /
// reduce-scatter / all-to-all, more ranks than `max_ranks`).
void check_replayable(const Workload& workload, int max_ranks = 8);

ReplayResult replay_workload(const Workload& workload, const ReplayOptions& options);

}  // namespace clustersim::calibrate
