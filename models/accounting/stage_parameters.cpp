#include "models/accounting/stage_parameters.hpp"

#include <optional>

namespace clustersim {

namespace {

std::int64_t on_one_gpu(std::int64_t parameters, Sharding sharding, const ParallelLayout& L) {
  switch (sharding) {
    case Sharding::kTensorParallel: return parameters / L.tp;
    case Sharding::kReplicated: return parameters;
    case Sharding::kExpert: return parameters / (L.ep * L.etp);
  }
  return parameters;
}

}  // namespace

StageParameters layer_parameters(const LayerShapes& layer, const ParallelLayout& L) {
  StageParameters p;
  for (const auto& l : layer.linears) {
    const std::int64_t n = on_one_gpu(l.parameters(), l.sharding, L);
    (l.sharding == Sharding::kExpert ? p.expert : p.dense) += n;
    if (l.role != Role::kRouter) p.fp8_linear += n;
  }
  for (const auto& v : layer.vectors) p.dense += on_one_gpu(v.size, v.sharding, L);
  p.layer_dense = p.dense;
  return p;
}

StageParameters stage_parameters(const ModelShapes& shapes, const ParallelLayout& L, std::int64_t rank) {
  // Layers of one kind (dense or MoE) have the same shapes: each kind is counted once.
  std::optional<StageParameters> per_layer[2];
  StageParameters p;
  for (const auto& chunk : L.chunks[static_cast<std::size_t>(rank)]) {
    for (std::int64_t i = chunk.first_layer; i < chunk.first_layer + chunk.num_layers; ++i) {
      const auto& layer = shapes.layers[static_cast<std::size_t>(i)];
      std::optional<StageParameters>& one = per_layer[layer.moe ? 1 : 0];
      if (!one) one = layer_parameters(layer, L);
      p.dense += one->dense;
      p.expert += one->expert;
      p.layer_dense += one->layer_dense;
      p.fp8_linear += one->fp8_linear;
    }
  }
  const bool first = rank == 0, last = rank == L.pp - 1;
  if (first) p.dense += shapes.embedding / L.tp + shapes.position_embedding;
  if (last) {
    p.dense += shapes.final_norm;
    // A tied output layer still needs its own copy of the embedding on the last stage.
    if (shapes.lm_head.copies > 0) p.dense += shapes.lm_head.parameters() / L.tp;
    else if (!first) p.dense += shapes.embedding / L.tp;
  }
  return p;
}

}  // namespace clustersim
