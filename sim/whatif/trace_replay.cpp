#include "sim/whatif/trace_replay.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>

#include "models/inputs/input_error.hpp"

namespace clustersim::sim {

namespace {

// Recorded clocks of different workers disagree slightly; larger negative gaps are set to 0.
constexpr double kClockSkewFloorS = -1e-2;
constexpr std::size_t kMaxReportedErrors = 10;
constexpr std::int32_t kEmpty = -1;

double floor_skew(double gap_s) { return gap_s <= kClockSkewFloorS ? 0.0 : gap_s; }

}  // namespace

TraceReplayLayout TraceReplayLayout::build(const traces::StragglerTrace& trace,
                                           const traces::StragglerJobMeta& meta,
                                           const TraceDependencyGraph& graph) {
  TraceReplayLayout L;
  L.dp_size_ = static_cast<std::size_t>(meta.dp_size);
  L.pp_size_ = meta.pp_size;
  L.ops_per_instance_ = graph.op_count();
  std::map<std::int64_t, std::size_t> step_index;
  for (const auto& r : trace.ops) step_index.emplace(r.step, 0);
  for (auto& [step, index] : step_index) {
    index = L.steps_.size();
    L.steps_.push_back(step);
  }
  const std::size_t slots = L.steps_.size() * L.dp_size_ * L.ops_per_instance_;
  L.recorded_start_s_.assign(slots, 0.0);
  L.recorded_duration_s_.assign(slots, 0.0);
  L.rank_.assign(L.dp_size_ * static_cast<std::size_t>(L.pp_size_), -1);
  std::vector<std::int32_t> line_of(slots, kEmpty);
  Diagnostics diag;
  auto full = [&] { return diag.errors().size() >= kMaxReportedErrors; };
  for (const auto& r : trace.ops) {
    if (full()) break;
    if (r.dp_rank >= meta.dp_size) {
      diag.error(trace.file, fmt::format("line {}, column dp_rank", r.line),
                 fmt::format("dp_rank {} but dp_size is {}", r.dp_rank, meta.dp_size),
                 "dp ranks run from 0 to dp_size - 1; check the metadata");
      continue;
    }
    const std::int32_t op = graph.find(r.stage, r.optype, r.seq_id);
    if (op < 0) {
      diag.error(trace.file, fmt::format("line {}", r.line),
                 fmt::format("{} seq_id {} on stage {} does not occur in step {} of dp_rank 0, "
                             "which the dependency graph is built from",
                             traces::op_type_name(r.optype), r.seq_id, r.stage,
                             graph.template_step()),
                 "every dp rank and step must record the same ops");
      continue;
    }
    const std::size_t s = L.slot(step_index[r.step], static_cast<std::size_t>(r.dp_rank),
                                 static_cast<std::size_t>(op));
    if (line_of[s] != kEmpty) {
      diag.error(trace.file, fmt::format("line {}", r.line),
                 fmt::format("{} seq_id {} of step {}, dp_rank {}, stage {} is also on line {}",
                             traces::op_type_name(r.optype), r.seq_id, r.step, r.dp_rank,
                             r.stage, line_of[s]),
                 "one row per op");
      continue;
    }
    line_of[s] = r.line;
    L.recorded_start_s_[s] = r.start_s;
    L.recorded_duration_s_[s] = r.duration_s;
    L.rank_[static_cast<std::size_t>(r.dp_rank) * static_cast<std::size_t>(L.pp_size_) +
            static_cast<std::size_t>(r.stage)] = r.rank;
  }
  for (std::size_t s = 0; s < slots && !full() && !diag.has_errors(); ++s) {
    if (line_of[s] != kEmpty) continue;
    const std::size_t op = s % L.ops_per_instance_;
    const std::size_t instance = s / L.ops_per_instance_;
    const auto& g = graph.op(op);
    diag.error(trace.file,
               fmt::format("step {}, dp_rank {}, stage {}", L.steps_[instance / L.dp_size_],
                           instance % L.dp_size_, g.stage),
               fmt::format("{} seq_id {} is missing", traces::op_type_name(g.optype), g.seq_id),
               fmt::format("step {} of dp_rank 0 has it; every dp rank and step must record the "
                           "same ops",
                           graph.template_step()));
  }
  diag.throw_if_errors();
  // Times relative to each step's earliest start; recorded step time.
  const std::size_t per_step = L.dp_size_ * L.ops_per_instance_;
  L.base_step_time_s_.assign(L.steps_.size(), 0.0);
  for (std::size_t k = 0; k < L.steps_.size(); ++k) {
    double first = std::numeric_limits<double>::infinity();
    double last = -std::numeric_limits<double>::infinity();
    for (std::size_t s = k * per_step; s < (k + 1) * per_step; ++s) {
      first = std::min(first, L.recorded_start_s_[s]);
      last = std::max(last, L.recorded_start_s_[s] + L.recorded_duration_s_[s]);
    }
    for (std::size_t s = k * per_step; s < (k + 1) * per_step; ++s) L.recorded_start_s_[s] -= first;
    L.base_step_time_s_[k] = last - first;
  }
  return L;
}

ReplayInputs measured_inputs(const TraceDependencyGraph& graph, const TraceReplayLayout& layout) {
  ReplayInputs in;
  in.duration_s = layout.recorded_duration_s();
  in.transfer_s.assign(layout.slot_count(), 0.0);
  in.launch_delay_s.assign(layout.slot_count(), 0.0);
  const auto& start = layout.recorded_start_s();
  const auto& duration = layout.recorded_duration_s();
  const std::size_t n = graph.op_count();
  const std::size_t dp = layout.dp_size();
  std::vector<double> latest(dp);  // latest recorded start in a group, per dp rank
  for (std::size_t k = 0; k < layout.step_count(); ++k) {
    for (std::size_t d = 0; d < dp; ++d) {
      for (std::size_t op = 0; op < n; ++op) {
        const std::size_t s = layout.slot(k, d, op);
        double ready = 0.0;  // the step start
        bool first = true;
        for (auto dep : graph.deps(op)) {
          const std::size_t t = layout.slot(k, d, static_cast<std::size_t>(dep));
          ready = first ? start[t] + duration[t] : std::max(ready, start[t] + duration[t]);
          first = false;
        }
        in.launch_delay_s[s] = floor_skew(start[s] - ready);
      }
    }
    for (const auto& group : graph.groups()) {
      double all_ranks = -std::numeric_limits<double>::infinity();
      std::fill(latest.begin(), latest.end(), -std::numeric_limits<double>::infinity());
      for (std::size_t d = 0; d < dp; ++d) {
        for (auto m : group.members) latest[d] = std::max(latest[d], start[layout.slot(k, d, m)]);
        all_ranks = std::max(all_ranks, latest[d]);
      }
      for (std::size_t d = 0; d < dp; ++d) {
        const double group_start = group.data_parallel_sync ? all_ranks : latest[d];
        for (auto m : group.members) {
          const std::size_t s = layout.slot(k, d, m);
          in.transfer_s[s] = floor_skew(start[s] + duration[s] - group_start);
        }
      }
    }
  }
  return in;
}

TraceReplayer::TraceReplayer(const TraceDependencyGraph& graph, const TraceReplayLayout& layout)
    : graph_(graph), layout_(layout) {
  dep_begin_.push_back(0);
  for (std::size_t op = 0; op < graph.op_count(); ++op) {
    for (auto d : graph.deps(op)) deps_.push_back(d);
    dep_begin_.push_back(static_cast<std::int32_t>(deps_.size()));
  }
  member_begin_.push_back(0);
  for (const auto& g : graph.groups()) {
    members_.insert(members_.end(), g.members.begin(), g.members.end());
    member_begin_.push_back(static_cast<std::int32_t>(members_.size()));
    dp_sync_.push_back(g.data_parallel_sync ? 1 : 0);
  }
  start_.assign(layout.slot_count(), 0.0);
  end_.assign(layout.slot_count(), 0.0);
  group_start_.assign(layout.dp_size(), 0.0);
  step_time_.assign(layout.step_count(), 0.0);
}

const std::vector<double>& TraceReplayer::run(const ReplayInputs& inputs) {
  const std::size_t n = layout_.ops_per_instance();
  const std::size_t dp = layout_.dp_size();
  const double* duration = inputs.duration_s.data();
  const double* transfer = inputs.transfer_s.data();
  const double* delay = inputs.launch_delay_s.empty() ? nullptr : inputs.launch_delay_s.data();
  double* start = start_.data();
  double* end = end_.data();
  const std::int32_t* dep_begin = dep_begin_.data();
  const std::int32_t* deps = deps_.data();
  // Start of op `op` of the instance based at `base`.
  auto start_op = [&](std::size_t base, std::int32_t op) {
    // The step starts at 0; an op with dependencies starts when the last of them has ended.
    double t = dep_begin[op] == dep_begin[op + 1] ? 0.0 : -std::numeric_limits<double>::infinity();
    for (std::int32_t i = dep_begin[op]; i < dep_begin[op + 1]; ++i) {
      t = std::max(t, end[base + static_cast<std::size_t>(deps[i])]);
    }
    const std::size_t s = base + static_cast<std::size_t>(op);
    start[s] = delay ? t + delay[s] : t;
  };
  for (std::size_t k = 0; k < layout_.step_count(); ++k) {
    const std::size_t step_base = k * dp * n;
    for (const TraceReplayUnit& unit : graph_.order()) {
      if (!unit.is_group) {
        for (std::size_t d = 0; d < dp; ++d) {
          const std::size_t base = step_base + d * n;
          start_op(base, unit.id);
          const std::size_t s = base + static_cast<std::size_t>(unit.id);
          end[s] = start[s] + duration[s];
        }
        continue;
      }
      const std::int32_t m0 = member_begin_[unit.id], m1 = member_begin_[unit.id + 1];
      double all_ranks = -std::numeric_limits<double>::infinity();
      for (std::size_t d = 0; d < dp; ++d) {
        const std::size_t base = step_base + d * n;
        double latest = -std::numeric_limits<double>::infinity();
        for (std::int32_t m = m0; m < m1; ++m) {
          start_op(base, members_[m]);
          latest = std::max(latest, start[base + static_cast<std::size_t>(members_[m])]);
        }
        group_start_[d] = latest;
        all_ranks = std::max(all_ranks, latest);
      }
      const bool sync = dp_sync_[unit.id] != 0;
      for (std::size_t d = 0; d < dp; ++d) {
        const std::size_t base = step_base + d * n;
        const double group_start = sync ? all_ranks : group_start_[d];
        for (std::int32_t m = m0; m < m1; ++m) {
          const std::size_t s = base + static_cast<std::size_t>(members_[m]);
          end[s] = group_start + transfer[s];
        }
      }
    }
    double first = std::numeric_limits<double>::infinity();
    double last = -std::numeric_limits<double>::infinity();
    for (std::size_t s = step_base; s < step_base + dp * n; ++s) {
      first = std::min(first, start[s]);
      last = std::max(last, end[s]);
    }
    step_time_[k] = last - first;
  }
  return step_time_;
}

}  // namespace clustersim::sim
