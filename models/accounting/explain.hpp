#pragma once
// `clustersim explain`: what a model is and what a plan costs in memory, before any timing.
#include <cstdint>
#include <optional>
#include <string>

#include "models/inputs/cluster_spec.hpp"
#include "models/accounting/memory_estimate.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/accounting/parameter_count.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/accounting/training_flops.hpp"

namespace clustersim {

struct PlanExplanation {
  TrainPlan plan;
  ParallelLayout layout;
  MemoryEstimate memory;
  std::optional<ClusterSpec> cluster;
  bool fits_in_memory() const;
};

struct Explanation {
  ModelSpec model;
  ParameterCount parameters;
  std::int64_t seq_length = 0;
  TrainingFlops flops_per_token;          // under the plan's recomputation, if any
  std::optional<PlanExplanation> plan;
};

// Without a plan: parameters and FLOPs at `seq_length`. With one: also memory per GPU.
Explanation explain(const ModelSpec& model, std::int64_t seq_length);
Explanation explain(const ModelSpec& model, const TrainPlan& plan, const ParallelLayout& layout,
                    std::optional<ClusterSpec> cluster);

}  // namespace clustersim
