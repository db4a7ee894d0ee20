#include "models/accounting/training_flops.hpp"

namespace clustersim {

double causal_attended_keys(std::int64_t seq_length, std::int64_t sliding_window) {
  const double s = static_cast<double>(seq_length);
  if (sliding_window <= 0 || sliding_window >= seq_length) return (s + 1.0) / 2.0;
  const double w = static_cast<double>(sliding_window);
  // The first w queries see 1..w keys, the remaining s - w see w keys each.
  return (w * (w + 1.0) / 2.0 + (s - w) * w) / s;
}

TrainingFlops training_flops_per_token(const ModelSpec& model, std::int64_t seq_length,
                                       Recompute recompute, double recomputed_layer_fraction) {
  return training_flops_per_token(model, model_shapes(model), seq_length, recompute, recomputed_layer_fraction);
}

TrainingFlops training_flops_per_token(const ModelSpec& model, const ModelShapes& shapes, std::int64_t seq_length,
                                       Recompute recompute, double recomputed_layer_fraction) {
  const double keys = causal_attended_keys(seq_length, model.sliding_window);
  // Per layer: QK^T (2 * heads * head_dim * keys) and attention x V (2 * heads * v_head_dim * keys).
  const double core = 2.0 * static_cast<double>(model.num_attention_heads) *
                      static_cast<double>(model.head_dim + model.v_head_dim) * keys;
  TrainingFlops f;
  double layers_forward = 0;
  for (const auto& layer : shapes.layers) {
    layers_forward += layer.forward_matmul_flops_per_token() + core;
    f.attention_core_forward += core;
  }
  const double lm_head = 2.0 * static_cast<double>(model.hidden_size * model.vocab_size);
  f.forward = layers_forward + lm_head;
  f.backward = 2.0 * f.forward;
  switch (recompute) {
    case Recompute::kNone: break;
    case Recompute::kSelective: f.recompute = f.attention_core_forward; break;
    case Recompute::kFull: f.recompute = layers_forward * recomputed_layer_fraction; break;
  }
  return f;
}

}  // namespace clustersim
