#pragma once
// Derived sizes of a plan on a world of GPUs, and the check of every rule that ties the plan to
// the model, the cluster and the world size (all problems collected, then one report).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/train_plan.hpp"

namespace clustersim {

struct PipelineChunk {
  std::int64_t first_layer = 0;  // index of its first transformer layer
  std::int64_t num_layers = 0;
};

struct ParallelLayout {
  std::int64_t world = 0;
  std::int64_t tp = 1, pp = 1, cp = 1, dp = 1, ep = 1, etp = 1;
  std::int64_t expert_dp = 1;  // data-parallel size of expert weights: TP*CP*DP / (EP*ETP)
  std::int64_t virtual_stages = 1;  // model chunks per pipeline rank (1 = no interleaving)
  std::int64_t micro_batch_size = 1;
  std::int64_t global_batch_size = 1;
  std::int64_t num_microbatches = 1;  // per pipeline, per step: GBS / (MBS * DP)
  std::int64_t seq_length = 0;
  // chunks[r][c]: layers of model chunk c on pipeline rank r (interleaved order).
  std::vector<std::vector<PipelineChunk>> chunks;

  std::int64_t layers_on_rank(std::int64_t pp_rank) const;
};

// Checks every rule (world = TP*PP*CP*DP, heads vs TP, layers vs PP/VPP, experts vs EP, batch vs
// MBS*DP, sequence vs CP, ...) and throws InputErrors listing all violations. Warnings (e.g.
// tensor parallelism across nodes) are added to `diag`.
ParallelLayout derive_layout(const ModelSpec& model, const TrainPlan& plan,
                             const ClusterSpec* cluster, std::int64_t world, Diagnostics& diag);
// The same checks without throwing, for callers that try many plans (search): nothing when
// `diag` holds errors, which it keeps.
std::optional<ParallelLayout> try_derive_layout(const ModelSpec& model, const TrainPlan& plan,
                                                const ClusterSpec* cluster, std::int64_t world, Diagnostics& diag);

// The dtype a plan's matrix multiplications run in (fp8 when fp8_format is set).
Dtype compute_dtype(const TrainPlan& plan);

}  // namespace clustersim
