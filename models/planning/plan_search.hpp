#pragma once
// Enumerates the parallel plans of a model on a world of GPUs (TP, PP, virtual stages, CP, EP,
// micro batch, recomputation, distributed optimizer), keeps those that are valid and fit in
// memory, and ranks them by the estimate. Every fitting plan is priced per stage; the schedule is
// evaluated in the order of a lower bound on the step time, until no remaining plan can enter
// the top. docs/estimate.md.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/cost_model.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim {

struct SearchRequest {
  std::int64_t gpus = 0;
  std::int64_t global_batch_size = 0;
  std::int64_t seq_length = 0;
  std::size_t top = 10;
  TrainPlan base;  // precision and overlap flags every candidate inherits
};

struct RankedPlan {
  TrainPlan plan;
  ParallelLayout layout;
  TrainingEstimate estimate;
};

struct SearchResult {
  std::int64_t enumerated = 0;  // candidates generated
  std::int64_t invalid = 0;     // rejected by the plan rules
  std::int64_t too_big = 0;     // valid but over the GPU's memory
  std::int64_t evaluated = 0;   // priced per stage, with a lower bound on their step time
  std::int64_t scheduled = 0;   // of those, scheduled in full (the rest cannot reach the top)
  std::map<std::string, std::int64_t> invalid_reasons;  // first rule each invalid plan broke
  // Per reason (same keys): the message of its first candidate, with numbers, for people.
  std::map<std::string, std::string> invalid_examples;
  std::vector<RankedPlan> best;  // fastest first, at most `top`
  double seconds = 0;            // wall time of the search
};

SearchResult search_plans(const ModelSpec& model, const ClusterSpec& cluster, const CostModel& costs,
                          const SearchRequest& request);

}  // namespace clustersim
