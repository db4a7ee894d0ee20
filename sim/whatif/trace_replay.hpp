#pragma once
// Replays a straggler trace's dependency graph with given op durations. Pure C++, no SimGrid.
//
// Every recorded op has a slot in flat arrays: slot = (step_index * dp_size + dp_rank) * N + op,
// where op is the graph's op id and N the graph's op count. An op starts when its in-worker
// dependencies have ended plus its launch delay; a local op ends after its duration; the members
// of a communication group end together at the latest start among them (on every dp rank of the
// step for data-parallel groups) plus their own transfer time. Steps are independent, each from 0.
#include <cstdint>
#include <vector>

#include "traces/straggler_trace.hpp"
#include "sim/whatif/trace_dependency_graph.hpp"

namespace clustersim::sim {

class TraceReplayLayout {
 public:
  // Places every row; throws InputErrors naming the trace (with line numbers) for rows that do
  // not fit the graph, duplicates, and ops missing from a step or dp rank.
  static TraceReplayLayout build(const traces::StragglerTrace& trace,
                                 const traces::StragglerJobMeta& meta,
                                 const TraceDependencyGraph& graph);

  std::size_t step_count() const { return steps_.size(); }
  std::size_t dp_size() const { return dp_size_; }
  std::size_t ops_per_instance() const { return ops_per_instance_; }
  std::size_t slot_count() const { return recorded_start_s_.size(); }
  std::size_t slot(std::size_t step_index, std::size_t dp_rank, std::size_t op) const {
    return (step_index * dp_size_ + dp_rank) * ops_per_instance_ + op;
  }
  const std::vector<std::int64_t>& steps() const { return steps_; }  // ascending
  // Recorded times by slot, relative to the step's earliest recorded start.
  const std::vector<double>& recorded_start_s() const { return recorded_start_s_; }
  const std::vector<double>& recorded_duration_s() const { return recorded_duration_s_; }
  // Recorded step time: latest end minus earliest start over all ops of the step.
  const std::vector<double>& base_step_time_s() const { return base_step_time_s_; }
  // Global rank of the worker (dp_rank, stage), as recorded.
  int rank(std::size_t dp_rank, int stage) const {
    return rank_[dp_rank * static_cast<std::size_t>(pp_size_) + static_cast<std::size_t>(stage)];
  }
  int pp_size() const { return pp_size_; }

 private:
  std::vector<std::int64_t> steps_;
  std::size_t dp_size_ = 1;
  std::size_t ops_per_instance_ = 0;
  int pp_size_ = 1;
  std::vector<double> recorded_start_s_;
  std::vector<double> recorded_duration_s_;
  std::vector<double> base_step_time_s_;
  std::vector<int> rank_;
};

// Inputs of one replay, by slot. An empty launch_delay_s means no launch delays.
struct ReplayInputs {
  std::vector<double> duration_s;  // used by local ops
  std::vector<double> transfer_s;  // used by members of communication groups
  std::vector<double> launch_delay_s;
};

// The measured inputs: recorded durations; transfer = recorded end - latest recorded start in
// the group; launch delay = recorded start - latest recorded end of the dependencies (or the
// step start). Transfers and delays at or below -10 ms (clock skew) become 0.
ReplayInputs measured_inputs(const TraceDependencyGraph& graph, const TraceReplayLayout& layout);

class TraceReplayer {
 public:
  TraceReplayer(const TraceDependencyGraph& graph, const TraceReplayLayout& layout);

  // Replays every step; returns the step times (latest end - earliest start). The op times of
  // the last run stay available through start_s() / end_s().
  const std::vector<double>& run(const ReplayInputs& inputs);
  const std::vector<double>& start_s() const { return start_; }
  const std::vector<double>& end_s() const { return end_; }

 private:
  const TraceDependencyGraph& graph_;
  const TraceReplayLayout& layout_;
  // Flat copies of the graph for the hot loop.
  std::vector<std::int32_t> dep_begin_, deps_;
  std::vector<std::int32_t> member_begin_, members_;
  std::vector<std::uint8_t> dp_sync_;
  std::vector<double> start_, end_, group_start_, step_time_;
};

}  // namespace clustersim::sim
