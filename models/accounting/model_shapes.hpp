#pragma once
// The weight matrices of a model, layer by layer: the one place where architecture becomes
// shapes. Parameter counts, FLOPs and memory are all derived from these lists.
#include <cstdint>
#include <string_view>
#include <vector>

#include "models/inputs/model_spec.hpp"

namespace clustersim {

// How a weight is split across ranks (Megatron-LM's layout).
enum class Sharding {
  kTensorParallel,  // split across the tensor-parallel group (column or row parallel)
  kReplicated,      // every tensor-parallel rank holds it (norms, router, MLA down-projections)
  kExpert,          // routed experts: split across expert-parallel, then expert-tensor-parallel
};

// What a weight belongs to, for breakdowns and for which parallel group holds it.
enum class Role { kAttention, kMlp, kRoutedExpert, kSharedExpert, kRouter, kNorm, kLmHead };

struct Linear {
  std::string_view name;    // e.g. "q_proj", "expert_down"
  Role role = Role::kAttention;
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
  bool bias = false;
  Sharding sharding = Sharding::kTensorParallel;
  std::int64_t copies = 1;         // routed experts: number of experts
  std::int64_t active_copies = 1;  // routed experts: experts per token

  std::int64_t weights() const { return in_features * out_features; }
  // Megatron's tensor-parallel split: the attention output and every MLP down projection are
  // row-parallel (split along in_features); the other sharded linears are column-parallel.
  bool row_parallel() const {
    return name == "o_proj" || name == "down_proj" || name == "expert_down" || name == "shared_down";
  }
  std::int64_t parameters() const { return copies * (weights() + (bias ? out_features : 0)); }
  std::int64_t active_parameters() const {
    return active_copies * (weights() + (bias ? out_features : 0));
  }
  // Forward multiply-add FLOPs for one token.
  double forward_flops_per_token() const {
    return 2.0 * static_cast<double>(active_copies) * static_cast<double>(weights());
  }
};

struct Vector {  // a norm's weight (and bias), a router's score-correction bias, ...
  std::string_view name;
  Role role = Role::kNorm;
  std::int64_t size = 0;
  Sharding sharding = Sharding::kReplicated;
};

// Layers of one kind (dense or MoE) have the same shapes; the lowering and the memory
// estimate size each kind once.
struct LayerShapes {
  bool moe = false;
  std::vector<Linear> linears;
  std::vector<Vector> vectors;

  std::int64_t parameters() const;
  std::int64_t active_parameters() const;
  double forward_matmul_flops_per_token() const;
};

struct ModelShapes {
  std::vector<LayerShapes> layers;       // transformer layers, in order
  std::int64_t embedding = 0;            // vocab x hidden (vocab-parallel)
  std::int64_t position_embedding = 0;   // learned positions (replicated)
  std::int64_t final_norm = 0;
  Linear lm_head;                        // copies == 0 when tied to the embedding
};

LayerShapes layer_shapes(const ModelSpec& model, std::int64_t layer);
ModelShapes model_shapes(const ModelSpec& model);

}  // namespace clustersim
