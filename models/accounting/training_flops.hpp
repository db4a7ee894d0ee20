#pragma once
// FLOPs per trained token: forward, backward and what recomputation adds.
#include <cstdint>

#include "models/accounting/model_shapes.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/train_plan.hpp"

namespace clustersim {

struct TrainingFlops {
  double forward = 0;                 // matmuls + attention core + LM head
  double attention_core_forward = 0;  // QK^T and attention x V (included in forward)
  double backward = 0;                // gradients w.r.t. inputs and weights: 2 x forward
  double recompute = 0;               // forward work repeated by activation recomputation

  double model() const { return forward + backward; }         // model FLOPs (MFU)
  double hardware() const { return model() + recompute; }     // hardware FLOPs (HFU)
};

// Average number of keys a query attends to in a causal sequence of `seq_length` tokens,
// with an optional sliding window (0 = none).
double causal_attended_keys(std::int64_t seq_length, std::int64_t sliding_window);

// `recomputed_layer_fraction`: share of transformer layers whose forward is repeated under
// full recomputation (1 for "uniform", recompute_num_layers / layers per chunk for "block").
TrainingFlops training_flops_per_token(const ModelSpec& model, std::int64_t seq_length,
                                       Recompute recompute, double recomputed_layer_fraction);
// The same with `shapes` = model_shapes(model) computed once by the caller.
TrainingFlops training_flops_per_token(const ModelSpec& model, const ModelShapes& shapes, std::int64_t seq_length,
                                       Recompute recompute, double recomputed_layer_fraction);

}  // namespace clustersim
