#include "models/planning/step_attribution.hpp"

#include <algorithm>
#include <limits>
#include <map>

namespace clustersim {

namespace {

using Kind = IterationActivityKind;

// The compute lane whose last activity ends last: the rank that ends the step.
std::int32_t tail_lane(const IterationGraph& g, std::span<const ActivitySpan> spans) {
  std::vector<double> lane_end(g.lanes.size(), -1);
  for (std::size_t i = 0; i < g.activities.size(); ++i) {
    const auto lane = static_cast<std::size_t>(g.activities[i].lane);
    if (g.lanes[lane].cls >= 0 && g.lanes[lane].stream == kComputeStream) lane_end[lane] = std::max(lane_end[lane], spans[i].end_s);
  }
  std::int32_t best = 0;
  for (std::size_t l = 0; l < lane_end.size(); ++l) {
    if (lane_end[l] > lane_end[static_cast<std::size_t>(best)]) best = static_cast<std::int32_t>(l);
  }
  return best;
}

// The step as the tail rank lived it: its own activities by what they are (a forward or
// backward split like its stage's prices), and every wait by what released it: a pipeline
// transfer (its duration is pp_comm, the rest of the wait is bubble), a DP collective (dp_comm),
// anything else (bubble). After its last activity, the wait for the step end is dp_comm.
StepBreakdown rank_breakdown(const IterationGraph& g, std::span<const ActivitySpan> spans,
                             const std::vector<StageTimes>& stages, std::int32_t lane, const ExtraTime& extra) {
  StepBreakdown b;
  const double eps = 1e-12;
  double last_end = 0;
  for (std::size_t i = 0; i < g.activities.size(); ++i) {
    const IterationActivity& m = g.activities[i];
    if (m.lane != lane) continue;
    const ActivitySpan t = spans[i];
    const double wait = t.start_s - last_end;
    if (wait > eps) {
      std::int32_t binding = -1;
      double binding_end = -1;
      for (std::int32_t p : g.preds(static_cast<std::int32_t>(i))) {
        if (spans[static_cast<std::size_t>(p)].end_s > binding_end + eps) binding_end = spans[static_cast<std::size_t>(p)].end_s, binding = p;
      }
      const IterationActivity* by = binding >= 0 ? &g.activities[static_cast<std::size_t>(binding)] : nullptr;
      if (by && by->kind == Kind::kSend) {
        const ActivitySpan& sp = spans[static_cast<std::size_t>(binding)];
        const double transfer = std::min(wait, sp.end_s - sp.start_s);
        b.pp_comm_s += transfer;
        b.bubble_s += wait - transfer;
      } else if (by && by->kind == Kind::kDpCollective) {
        b.dp_comm_s += wait;
      } else {
        b.bubble_s += wait;
      }
    }
    const double full = t.end_s - t.start_s;
    const double d = std::min(full, m.nominal_s);
    // Time beyond the nominal duration: variability to its own line, anything else (a slowed
    // rank, a shared link) to the activity's line.
    double own_extra = full - d;
    if (own_extra > eps && extra) {
      std::vector<PathSegment> named;
      extra(static_cast<std::int32_t>(i), own_extra, false, named);
      for (const PathSegment& seg : named) {
        if (seg.cause == "variability") {
          b.variability_s += seg.seconds;
          own_extra -= seg.seconds;
        } else if (seg.cause == "imbalance") {
          b.imbalance_s += seg.seconds;
          own_extra -= seg.seconds;
        } else if (seg.cause == "interference") {
          b.interference_s += seg.seconds;
          own_extra -= seg.seconds;
        } else if (seg.cause == "bubble" || seg.cause == "idle") {
          b.bubble_s += seg.seconds;
          own_extra -= seg.seconds;
        }
      }
    }
    switch (m.kind) {
      case Kind::kForward:
      case Kind::kBackward: {
        const StageTimes& s = stages[static_cast<std::size_t>(m.stage)];
        const double total = s.compute_s + s.tp_comm_s + s.cp_comm_s + s.ep_comm_s + s.dp_in_microbatch_s;
        if (total <= 0) {
          b.compute_s += d;
          break;
        }
        b.compute_s += d * s.compute_s / total;
        b.tp_comm_s += d * s.tp_comm_s / total;
        b.cp_comm_s += d * s.cp_comm_s / total;
        b.ep_comm_s += d * s.ep_comm_s / total;
        b.dp_comm_s += d * s.dp_in_microbatch_s / total;
        break;
      }
      case Kind::kSend: b.pp_comm_s += d; break;
      case Kind::kDpCollective: b.dp_comm_s += d; break;
      case Kind::kOptimizer: b.optimizer_s += d; break;
      case Kind::kHost: b.fixed_s += d; break;
      case Kind::kJoin: b.bubble_s += d; break;
    }
    if (own_extra > eps) {
      switch (m.kind) {
        case Kind::kForward:
        case Kind::kBackward: b.compute_s += own_extra; break;
        case Kind::kSend: b.pp_comm_s += own_extra; break;
        case Kind::kDpCollective: b.dp_comm_s += own_extra; break;
        case Kind::kOptimizer: b.optimizer_s += own_extra; break;
        case Kind::kHost: b.fixed_s += own_extra; break;
        case Kind::kJoin: b.bubble_s += own_extra; break;
      }
    }
    last_end = std::max(last_end, t.end_s);
  }
  b.dp_comm_s += std::max(0.0, spans[static_cast<std::size_t>(g.end)].end_s - last_end);
  return b;
}

}  // namespace

StepAttribution attribute_step(const IterationGraph& g, std::span<const ActivitySpan> spans,
                               const std::vector<StageTimes>& stages, const ExtraTime& extra) {
  StepAttribution a;
  a.step_time_s = spans[static_cast<std::size_t>(g.end)].end_s;
  // Walk back from the end along the predecessor that finished last (the one that set each
  // start time).
  std::vector<PathSegment> path;
  const double eps = 1e-12;
  for (std::int32_t cur = g.end; cur >= 0;) {
    ++a.critical_activities;
    const IterationActivity& m = g.activities[static_cast<std::size_t>(cur)];
    const ActivitySpan t = spans[static_cast<std::size_t>(cur)];
    const double d = t.end_s - t.start_s;
    const double base = std::min(d, m.nominal_s);
    switch (m.kind) {
      case Kind::kForward:
      case Kind::kBackward:
        path.push_back({"compute", "", base});
        break;
      case Kind::kSend: path.push_back({"pp_comm", "", base}); break;
      case Kind::kDpCollective: path.push_back({"dp_comm", "", base}); break;
      case Kind::kOptimizer: path.push_back({"optimizer", "", base}); break;
      case Kind::kHost: path.push_back({"fixed", "", base}); break;
      case Kind::kJoin:  // a wait with a duration: gradients becoming ready as the backward runs
        if (base > 0) path.push_back({"compute", "", base});
        break;
    }
    if (d - base > eps) {
      if (extra) {
        extra(cur, d - base, true, path);
      } else {
        path.push_back({"bubble", "", d - base});
      }
    }
    std::int32_t best = -1;
    double best_end = -std::numeric_limits<double>::infinity();
    for (std::int32_t p : g.preds(cur)) {
      const double e = spans[static_cast<std::size_t>(p)].end_s;
      if (e > best_end + eps) best_end = e, best = p;
    }
    const double gap = t.start_s - (best < 0 ? 0.0 : best_end);
    if (gap > eps) path.push_back({"bubble", "", gap});
    cur = best;
  }

  std::map<std::pair<std::string, std::string>, double> by_cause;
  for (PathSegment& seg : path) {
    if (seg.cause == "idle") seg.cause = "bubble";
    by_cause[{seg.cause, seg.detail}] += seg.seconds;
    if (seg.cause == "straggler" || seg.cause == "gpu_type") a.straggler_s += seg.seconds;
    if (seg.cause == "contention") a.contention_s += seg.seconds;
    if (seg.cause == "variability") a.variability_s += seg.seconds;
  }
  for (const auto& [key, seconds] : by_cause) a.causes.push_back({key.first, key.second, seconds});
  a.breakdown = rank_breakdown(g, spans, stages, tail_lane(g, spans), extra);
  std::stable_sort(a.causes.begin(), a.causes.end(),
                   [](const CriticalCause& x, const CriticalCause& y) { return x.seconds > y.seconds; });
  return a;
}

}  // namespace clustersim
