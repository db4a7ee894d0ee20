#pragma once
// The dependency graph of one training step, rebuilt from a per-op straggler trace and the
// job's TP/PP/DP/CP(dsp)/VPP layout (model: docs/straggler-traces.md). Pure C++, no SimGrid.
//
// The graph is built from the first step of data-parallel rank 0 and holds every op of that
// pipeline (all stages); it is assumed identical for every dp rank and every step, which the
// replay layout checks op by op. Only one rank per TP x CP group is in a trace: an op stands
// for its group and the graph never invents the TP/CP peers (see notes()).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "traces/straggler_trace.hpp"

namespace clustersim::sim {

enum class TraceStream : std::uint8_t {
  kCompute,
  kForwardSend,
  kForwardRecv,
  kBackwardSend,
  kBackwardRecv,
  kDataParallel,  // params-all-gather, grads-reduce-scatter, separate-grads-all-reduce
  kStepEnd,       // gc, layernorm/embedding grads all-reduce, clip, optimizer
};
inline constexpr int kTraceStreamCount = 7;
std::string_view stream_name(TraceStream stream);

struct TraceGraphOp {
  traces::StragglerOpType optype = traces::StragglerOpType::kForwardCompute;
  TraceStream stream = TraceStream::kCompute;
  std::int8_t stage = 0;
  std::int8_t mc = -1;
  std::int8_t mb_id = -1;
  std::int16_t gmc = -1;
  std::int32_t seq_id = 0;
  std::int32_t group = -1;  // communication group, -1 for a local op
};

// Members complete together: each ends at the latest start among the members (on every dp rank
// of the step when data_parallel_sync) plus its own transfer time.
struct TraceCommGroup {
  std::vector<std::int32_t> members;
  bool data_parallel_sync = false;
};

// Replay order: a local op, or a whole communication group, after all of its dependencies.
struct TraceReplayUnit {
  std::int32_t id = 0;  // op id or group id
  bool is_group = false;
};

class TraceDependencyGraph {
 public:
  // Throws InputErrors naming the trace when its first step does not fit the model.
  static TraceDependencyGraph build(const traces::StragglerTrace& trace,
                                    const traces::StragglerJobMeta& meta);

  std::size_t op_count() const { return ops_.size(); }
  const TraceGraphOp& op(std::size_t id) const { return ops_[id]; }
  const std::vector<TraceGraphOp>& ops() const { return ops_; }
  // In-worker dependencies of an op: it starts after all of them have ended.
  std::span<const std::int32_t> deps(std::size_t id) const {
    return {deps_.data() + dep_begin_[id], deps_.data() + dep_begin_[id + 1]};
  }
  std::size_t dependency_count() const { return deps_.size(); }
  const std::vector<TraceCommGroup>& groups() const { return groups_; }
  const std::vector<TraceReplayUnit>& order() const { return order_; }
  // The op with this stage, type and seq_id, or -1.
  std::int32_t find(int stage, traces::StragglerOpType type, int seq_id) const;

  int pp_size() const { return pp_size_; }
  int dp_size() const { return dp_size_; }
  std::int64_t template_step() const { return template_step_; }
  bool data_parallel_comm() const { return data_parallel_comm_; }
  bool overlapped_grad_reduce() const { return overlapped_grad_reduce_; }
  // What the model assumes and what the trace cannot tell, for the output.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  friend class TraceGraphBuilder;
  std::vector<TraceGraphOp> ops_;
  std::vector<std::int32_t> dep_begin_;
  std::vector<std::int32_t> deps_;
  std::vector<TraceCommGroup> groups_;
  std::vector<TraceReplayUnit> order_;
  // find(): index_begin_[stage * kStragglerOpTypeCount + type] into index_ (ids by seq_id).
  std::vector<std::int32_t> index_begin_;
  std::vector<std::int32_t> index_;
  int pp_size_ = 1;
  int dp_size_ = 1;
  std::int64_t template_step_ = 0;
  bool data_parallel_comm_ = false;
  bool overlapped_grad_reduce_ = false;
  std::vector<std::string> notes_;
};

}  // namespace clustersim::sim
