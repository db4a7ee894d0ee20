#pragma once
// Total and active (per token) parameter counts of a model. MTP modules are excluded.
#include <cstdint>

#include "models/inputs/model_spec.hpp"

namespace clustersim {

struct ParameterCount {
  std::int64_t total = 0;
  std::int64_t active = 0;      // parameters a token touches: top-k routed experts only
  std::int64_t embedding = 0;   // word (+ learned position) embeddings
  std::int64_t lm_head = 0;     // 0 when tied to the embedding
  std::int64_t attention = 0;   // all layers, projections + attention-internal norms
  std::int64_t dense_mlp = 0;   // MLPs of dense layers
  std::int64_t routed_experts = 0;
  std::int64_t shared_experts = 0;
  std::int64_t router = 0;
  std::int64_t norms = 0;       // layer norms + final norm
};

ParameterCount count_parameters(const ModelSpec& model);

}  // namespace clustersim
