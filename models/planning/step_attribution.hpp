#pragma once
// Where one iteration's time went, from the timed iteration graph: the same rules for the
// estimate (nominal times) and the SimGrid replay (simulated times), so the two breakdowns
// name the same causes (docs/estimate.md, "Breakdown").
//
// The breakdown is the step as the rank that ends it lived it: its own work by what it is, and
// each wait by what released it. The critical path is the chain of activities that set the
// step time, by cause; time an activity took beyond its nominal duration is named by the caller
// (a slowed rank, a shared link, variability).
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "models/planning/iteration_graph.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim {

// One cause on the critical path. cause: compute, bubble, tp_comm, cp_comm, ep_comm, dp_comm,
// pp_comm, optimizer, and from the replay straggler or gpu_type (detail: "rank R (node N) xF"),
// contention (detail: a link name), variability.
struct CriticalCause {
  std::string cause;
  std::string detail;
  double seconds = 0;
};

struct PathSegment {
  std::string cause, detail;
  double seconds = 0;
};

// Names the time an activity took beyond its nominal duration (adds segments). `on_path`: the
// activity is on the critical path (else it is the tail rank's own, for the breakdown).
using ExtraTime =
    std::function<void(std::int32_t activity, double extra_s, bool on_path, std::vector<PathSegment>& out)>;

struct StepAttribution {
  double step_time_s = 0;
  StepBreakdown breakdown;
  double straggler_s = 0;    // straggler and gpu_type segments
  double contention_s = 0;
  double variability_s = 0;
  // The critical path by cause, largest first; sums to the step. Its compute is that of every
  // stage the path passes through (pipeline fill and drain included); its bubble is only where
  // the path itself waits.
  std::vector<CriticalCause> causes;
  std::int64_t critical_activities = 0;
};

StepAttribution attribute_step(const IterationGraph& graph, std::span<const ActivitySpan> spans,
                               const std::vector<StageTimes>& stages, const ExtraTime& extra = {});

}  // namespace clustersim
