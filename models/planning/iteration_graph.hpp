#pragma once
// One training iteration as the pipeline schedule runs it: per pipeline stage (and per replica
// class when a replay simulates several), a compute lane runs the stage's forward and backward
// chunks in Megatron-LM's order (1F1B or interleaved), pipeline sends run on the compute lane
// (blocking) or on send lanes of their own (overlap_p2p_comm), the DP gradient reductions and
// parameter gathers on a DP lane per stage, the optimizer at the end. Every activity carries
// its nominal duration from the estimate's prices.
//
// The estimate evaluates this graph without a network (evaluate_iteration: each activity takes
// its nominal time); the SimGrid replay (sim/training) runs the same graph on the fabric. So the
// two agree by construction on a plan nothing perturbs, and differ only by what the platform
// adds (docs/simulate.md).
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "models/cost/cost_model.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim {

struct StageTimes;

// kHost: per-step host-side work on the compute stream (the batch load, gradient clipping).
enum class IterationActivityKind : std::uint8_t { kForward, kBackward, kSend, kDpCollective, kOptimizer, kHost, kJoin };
// Streams of a rank (the trace's tid).
enum IterationStream : std::int32_t { kComputeStream = 0, kSendForwardStream = 1, kSendBackwardStream = 2, kDpStream = 3 };

struct IterationActivity {
  IterationActivityKind kind = IterationActivityKind::kJoin;
  std::int32_t lane = 0;
  std::int32_t cls = -1;    // replica class; -1: the stage's DP lane or the step end
  std::int32_t stage = -1;
  std::int32_t chunk = 0;
  std::int32_t mb = 0;
  std::int32_t stream = kComputeStream;
  double nominal_s = 0;         // alone, at nominal speed
  std::int32_t to_stage = -1;   // sends: the receiving stage (same class)
  std::int32_t dp_op = -1;      // DP collectives: index into the stage's step ops
  std::int32_t peer = -1;       // sends: the activity that receives
  std::int32_t comm_sms = 0;    // DP collectives: SMs their NCCL kernel holds (CostModel::collective_sms)
  std::string_view name;
};

struct IterationLane {
  std::int32_t cls = -1, stage = -1;  // the cell whose representative rank hosts it (cls -1: class 0)
  std::int32_t stream = kComputeStream;
};

struct IterationGraph {
  std::int64_t pp = 1, virtual_stages = 1, microbatches = 1, classes = 1;
  std::vector<IterationActivity> activities;  // each lane's activities in lane order
  // Every predecessor of activity i, the lane's previous activity first:
  // pred[pred_begin[i] .. pred_begin[i + 1]).
  std::vector<std::int32_t> pred_begin, pred;
  std::vector<std::int32_t> order;  // a topological order of the activities
  std::vector<IterationLane> lanes;
  std::int32_t end = -1;  // the step end (a join of every lane's last activity)

  std::size_t cell(std::int64_t cls, std::int64_t stage) const { return static_cast<std::size_t>(cls * pp + stage); }
  std::span<const std::int32_t> preds(std::int32_t activity) const {
    const auto i = static_cast<std::size_t>(activity);
    return {pred.data() + pred_begin[i], pred.data() + pred_begin[i + 1]};
  }
};

// The compute lane's order on stage `s`: (backward?, (chunk, micro-batch)). 1F1B: p - s - 1
// warm-up forwards, then one forward one backward, then the cool-down backwards. Interleaved
// (Megatron-LM): micro-batches in groups of p, chunk by chunk; (p - s - 1) * 2 + (v - 1) * p
// warm-up forwards.
std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> pipeline_order(std::int64_t s, std::int64_t p,
                                                                                  std::int64_t v, std::int64_t m);

// The iteration of `workload` priced by `stages` (estimate_training's per-stage times), for
// `classes` replica classes that each run every stage (the DP collectives wait for all of
// them). `data_loading_s`: the batch load exposed at the start of the first and last stages.
IterationGraph build_iteration_graph(const Workload& workload, const std::vector<StageTimes>& stages,
                                     const CostModel& costs, std::int64_t classes = 1, double data_loading_s = 0);

// The fraction of stage s's layers in its model chunk c (1 / v when the layout has no chunks).
double pipeline_chunk_share(const ParallelLayout& layout, std::int64_t s, std::int64_t c);


struct ActivitySpan {
  double start_s = 0, end_s = 0;
};

// Start and end of every activity when each takes its nominal time, or `seconds[i]` when given
// (lanes run in order, an activity starts when its lane and its dependencies are done).
std::vector<ActivitySpan> evaluate_iteration(const IterationGraph& graph, std::span<const double> seconds = {});

// Shared NICs on a timeline (`spans`, the iteration timed without them): every pipeline
// transfer and DP collective of a stage that overlap in time stretched by the overlap, as two
// flows sharing the stage's NIC at half rate each do (one pass of max-min sharing on that
// timeline). Returns each activity's stretch. docs/estimate.md, "Shared NICs".
std::vector<double> shared_nic_extra_s(const IterationGraph& graph, std::span<const ActivitySpan> spans);

// Compute slowed by the DP collectives that run beside it: while a collective whose kernel holds
// c of the GPU's `sm_count` SMs runs on stage s, a forward or backward of stage s has the other
// SMs, so the part of it the collective overlaps takes sm_count / (sm_count - c) as long. One pass
// over `spans` (the timeline without it), as shared_nic_extra_s does for NICs. Returns each
// activity's extra seconds (0 but for forwards and backwards). docs/estimate.md, "Interference".
std::vector<double> interference_extra_s(const IterationGraph& graph, std::span<const ActivitySpan> spans,
                                         std::int64_t sm_count);

}  // namespace clustersim
