#include "models/accounting/explain.hpp"

#include <algorithm>

namespace clustersim {

bool PlanExplanation::fits_in_memory() const {
  if (!cluster) return true;
  return memory.peak().bytes.total() <= static_cast<double>(cluster->gpu.hbm_bytes);
}

namespace {

Explanation explain_model(const ModelSpec& model, std::int64_t seq_length, Recompute recompute,
                          double recomputed_layer_fraction) {
  Explanation e;
  e.model = model;
  e.parameters = count_parameters(model);
  e.seq_length = seq_length;
  e.flops_per_token =
      training_flops_per_token(model, seq_length, recompute, recomputed_layer_fraction);
  return e;
}

}  // namespace

Explanation explain(const ModelSpec& model, std::int64_t seq_length) {
  return explain_model(model, seq_length, Recompute::kNone, 0.0);
}

Explanation explain(const ModelSpec& model, const TrainPlan& plan, const ParallelLayout& layout,
                    std::optional<ClusterSpec> cluster) {
  double fraction = 1.0;
  if (plan.recompute_granularity == Recompute::kFull &&
      plan.recompute_method == RecomputeMethod::kBlock) {
    // Block recomputation repeats the first recompute_num_layers layers of every chunk.
    std::int64_t recomputed = 0;
    for (const auto& rank : layout.chunks) {
      for (const auto& chunk : rank) {
        recomputed += std::min(chunk.num_layers, plan.recompute_num_layers.value_or(1));
      }
    }
    fraction = static_cast<double>(recomputed) / static_cast<double>(model.num_layers);
  }
  Explanation e = explain_model(model, plan.seq_length, plan.recompute_granularity, fraction);
  e.plan = PlanExplanation{plan, layout, estimate_memory(model, plan, layout), std::move(cluster)};
  return e;
}

}  // namespace clustersim
