#include "sim/whatif/straggler_whatif.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "models/inputs/input_error.hpp"

namespace clustersim::sim {

using traces::StragglerOpType;

namespace {

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Median as the mean of the two middle values for an even count.
double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2.0;
}

// The study merges the four pipeline send/receive types into two groups.
std::string attribution_label(StragglerOpType type) {
  switch (type) {
    case StragglerOpType::kForwardSend:
    case StragglerOpType::kForwardRecv: return "forward-pp-comm";
    case StragglerOpType::kBackwardSend:
    case StragglerOpType::kBackwardRecv: return "backward-pp-comm";
    default: return std::string(traces::op_type_name(type));
  }
}

void sort_descending(std::vector<WhatIfGroupSlowdown>& groups) {
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto& a, const auto& b) { return a.slowdown > b.slowdown; });
}

}  // namespace

StragglerWhatIf::StragglerWhatIf(const TraceDependencyGraph& graph, const TraceReplayLayout& layout)
    : graph_(graph), layout_(layout), replayer_(graph, layout) {
  measured_ = measured_inputs(graph, layout);
  nodelay_ = measured_;
  nodelay_.launch_delay_s.clear();
  ideal_ = ideal_inputs();
}

ReplayInputs StragglerWhatIf::ideal_inputs() const {
  constexpr std::size_t kTypes = traces::kStragglerOpTypeCount;
  std::array<std::vector<double>, kTypes> durations, transfers;
  const std::size_t n = graph_.op_count();
  for (std::size_t s = 0; s < layout_.slot_count(); ++s) {
    const auto& op = graph_.op(s % n);
    const auto t = static_cast<std::size_t>(op.optype);
    durations[t].push_back(nodelay_.duration_s[s]);
    if (op.group >= 0) transfers[t].push_back(nodelay_.transfer_s[s]);
  }
  std::array<double, kTypes> duration{}, transfer{};
  for (std::size_t t = 0; t < kTypes; ++t) {
    const bool compute_like = traces::is_compute_like(static_cast<StragglerOpType>(t));
    duration[t] = compute_like ? mean(durations[t]) : median(durations[t]);
    transfer[t] = compute_like ? mean(transfers[t]) : median(transfers[t]);
  }
  ReplayInputs ideal;
  ideal.duration_s.resize(layout_.slot_count());
  ideal.transfer_s.resize(layout_.slot_count());
  for (std::size_t s = 0; s < layout_.slot_count(); ++s) {
    const auto t = static_cast<std::size_t>(graph_.op(s % n).optype);
    ideal.duration_s[s] = duration[t];
    ideal.transfer_s[s] = transfer[t];
  }
  return ideal;
}

template <typename Pred>
ReplayInputs StragglerWhatIf::mix(const ReplayInputs& into, const ReplayInputs& from,
                                  Pred pred) const {
  ReplayInputs out = into;
  const std::size_t n = graph_.op_count();
  const std::size_t dp = layout_.dp_size();
  for (std::size_t k = 0; k < layout_.step_count(); ++k) {
    for (std::size_t d = 0; d < dp; ++d) {
      for (std::size_t op = 0; op < n; ++op) {
        if (!pred(d, op)) continue;
        const std::size_t s = layout_.slot(k, d, op);
        out.duration_s[s] = from.duration_s[s];
        out.transfer_s[s] = from.transfer_s[s];
      }
    }
  }
  return out;
}

double StragglerWhatIf::mean_replay(const ReplayInputs& inputs, std::vector<double>* steps) {
  const std::vector<double>& t = replayer_.run(inputs);
  if (steps) *steps = t;
  return mean(t);
}

StragglerWhatIfResult StragglerWhatIf::analyze(const std::vector<WhatIfScenario>& scenarios) {
  StragglerWhatIfResult r;
  r.steps = layout_.steps();
  r.base_s = layout_.base_step_time_s();
  r.mean_base_s = mean(r.base_s);
  r.mean_replayed_s = mean_replay(measured_, &r.replayed_s);
  for (std::size_t k = 0; k < r.steps.size(); ++k) {
    const double error = std::fabs(r.replayed_s[k] - r.base_s[k]) / r.base_s[k];
    if (k == 0 || error > r.baseline_max_relative_error) {
      r.baseline_max_relative_error = error;
      r.baseline_worst_step = r.steps[k];
    }
  }
  r.mean_nodelay_s = mean_replay(nodelay_, &r.nodelay_s);
  r.mean_ideal_s = mean_replay(ideal_, &r.ideal_s);
  ideal_start_s_ = replayer_.start_s();
  ideal_end_s_ = replayer_.end_s();
  r.slowdown = r.mean_nodelay_s / r.mean_ideal_s;
  r.waste = 1.0 - 1.0 / r.slowdown;
  r.launch_slowdown = r.mean_base_s / r.mean_nodelay_s;

  auto restored = [&](auto pred) { return mean_replay(mix(ideal_, nodelay_, pred)) / r.mean_ideal_s; };
  // By op type, in enum order (pipeline send/receive merged).
  std::vector<std::string> labels;
  for (const auto& op : graph_.ops()) {
    std::string label = attribution_label(op.optype);
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
  }
  std::sort(labels.begin(), labels.end(), [](const std::string& a, const std::string& b) {
    auto rank = [](const std::string& l) {
      for (int t = 0; t < traces::kStragglerOpTypeCount; ++t) {
        if (attribution_label(static_cast<StragglerOpType>(t)) == l) return t;
      }
      return traces::kStragglerOpTypeCount;
    };
    return rank(a) < rank(b);
  });
  std::vector<std::size_t> label_of_op(graph_.op_count());
  for (std::size_t op = 0; op < graph_.op_count(); ++op) {
    const std::string label = attribution_label(graph_.op(op).optype);
    label_of_op[op] = static_cast<std::size_t>(
        std::find(labels.begin(), labels.end(), label) - labels.begin());
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    WhatIfGroupSlowdown g;
    g.label = labels[i];
    g.slowdown = restored([&](std::size_t, std::size_t op) { return label_of_op[op] == i; });
    r.by_optype.push_back(g);
  }
  for (std::size_t d = 0; d < layout_.dp_size(); ++d) {
    WhatIfGroupSlowdown g;
    g.label = fmt::format("dp_rank {}", d);
    g.dp_rank = static_cast<int>(d);
    g.slowdown = restored([&](std::size_t dp, std::size_t) { return dp == d; });
    r.by_dp_rank.push_back(g);
  }
  for (int s = 0; s < graph_.pp_size(); ++s) {
    WhatIfGroupSlowdown g;
    g.label = fmt::format("stage {}", s);
    g.stage = s;
    g.slowdown = restored([&](std::size_t, std::size_t op) { return graph_.op(op).stage == s; });
    r.by_stage.push_back(g);
  }
  for (std::size_t d = 0; d < layout_.dp_size(); ++d) {
    for (int s = 0; s < graph_.pp_size(); ++s) {
      WhatIfGroupSlowdown g;
      g.dp_rank = static_cast<int>(d);
      g.stage = s;
      g.rank = layout_.rank(d, s);
      g.label = fmt::format("rank {} (dp_rank {}, stage {})", g.rank, d, s);
      g.slowdown = restored(
          [&](std::size_t dp, std::size_t op) { return dp == d && graph_.op(op).stage == s; });
      r.by_worker.push_back(g);
    }
  }
  for (auto* list : {&r.by_optype, &r.by_dp_rank, &r.by_stage, &r.by_worker}) sort_descending(*list);

  const double gap = r.mean_nodelay_s - r.mean_ideal_s;
  const int last = graph_.pp_size() - 1;
  const double last_stage_ideal = mean_replay(
      mix(nodelay_, ideal_, [&](std::size_t, std::size_t op) { return graph_.op(op).stage == last; }));
  r.last_stage_share = gap != 0 ? (r.mean_nodelay_s - last_stage_ideal) / gap : 0.0;

  const std::size_t n = graph_.op_count();
  for (const auto& scenario : scenarios) {
    ReplayInputs in = nodelay_;
    for (const auto& change : scenario.changes) {
      const auto& sel = change.select;
      auto pred = [&](std::size_t d, std::size_t op) {
        const auto& o = graph_.op(op);
        return (!sel.dp_rank || static_cast<std::size_t>(*sel.dp_rank) == d) &&
               (!sel.stage || *sel.stage == o.stage) &&
               (!sel.rank || *sel.rank == layout_.rank(d, o.stage)) && sel.matches_type(o.optype);
      };
      if (change.kind == WhatIfChange::Kind::kIdeal) {
        in = mix(in, ideal_, pred);
        continue;
      }
      for (std::size_t k = 0; k < layout_.step_count(); ++k) {
        for (std::size_t d = 0; d < layout_.dp_size(); ++d) {
          for (std::size_t op = 0; op < n; ++op) {
            if (!pred(d, op)) continue;
            const std::size_t s = layout_.slot(k, d, op);
            in.duration_s[s] *= change.factor;
            in.transfer_s[s] *= change.factor;
          }
        }
      }
    }
    WhatIfScenarioResult sr;
    sr.name = scenario.name;
    sr.mean_step_time_s = mean_replay(in, &sr.step_time_s);
    sr.speedup = r.mean_nodelay_s / sr.mean_step_time_s;
    sr.recovered = gap != 0 ? std::min(1.0, (r.mean_nodelay_s - sr.mean_step_time_s) / gap) : 0.0;
    sr.beyond_ideal_s = std::max(0.0, r.mean_ideal_s - sr.mean_step_time_s);
    r.scenarios.push_back(std::move(sr));
  }
  return r;
}

void validate_scenarios(const std::vector<WhatIfScenario>& scenarios,
                        const TraceReplayLayout& layout, const std::string& file) {
  Diagnostics diag;
  std::vector<int> ranks;
  for (std::size_t d = 0; d < layout.dp_size(); ++d) {
    for (int s = 0; s < layout.pp_size(); ++s) ranks.push_back(layout.rank(d, s));
  }
  std::sort(ranks.begin(), ranks.end());
  for (const auto& scenario : scenarios) {
    for (const auto& change : scenario.changes) {
      const auto& sel = change.select;
      if (sel.rank && !std::binary_search(ranks.begin(), ranks.end(), *sel.rank)) {
        diag.error(file, sel.pointer + "/rank", fmt::format("rank {} is not in the trace", *sel.rank),
                   fmt::format("ranks in the trace: {}", fmt::join(ranks, ", ")));
      }
      if (sel.dp_rank && static_cast<std::size_t>(*sel.dp_rank) >= layout.dp_size()) {
        diag.error(file, sel.pointer + "/dp_rank", fmt::format("dp_rank {} is not in the trace", *sel.dp_rank),
                   fmt::format("0 to {}", layout.dp_size() - 1));
      }
      if (sel.stage && *sel.stage >= layout.pp_size()) {
        diag.error(file, sel.pointer + "/stage", fmt::format("stage {} is not in the trace", *sel.stage),
                   fmt::format("0 to {}", layout.pp_size() - 1));
      }
    }
  }
  diag.throw_if_errors();
}

}  // namespace clustersim::sim
