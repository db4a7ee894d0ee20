#pragma once
// Parameters one GPU of a pipeline stage holds, split by the group that synchronises them.
// Used by the memory estimate (what is stored) and the lowering (what is reduced and gathered).
#include <cstdint>

#include "models/accounting/model_shapes.hpp"
#include "models/inputs/parallel_layout.hpp"

namespace clustersim {

struct StageParameters {
  std::int64_t dense = 0;        // synchronised over DP x CP (and sharded there by the distributed optimizer)
  std::int64_t expert = 0;       // synchronised over the expert data-parallel group
  std::int64_t layer_dense = 0;  // the dense ones inside transformer layers (ZeRO-2/3 reduce them per layer)
  std::int64_t fp8_linear = 0;   // transformer-layer linears that run in FP8 when the plan does (not routers)
};

// One transformer layer's parameters on one GPU (its `layer_dense` equals its `dense`).
StageParameters layer_parameters(const LayerShapes& layer, const ParallelLayout& layout);

// Every parameter on one GPU of pipeline rank `pp_rank`: its layers, the embedding (and learned
// positions) on the first stage, the final norm and the output layer on the last (a tied output
// layer needs its own copy of the embedding when the stages differ).
StageParameters stage_parameters(const ModelShapes& shapes, const ParallelLayout& layout, std::int64_t pp_rank);

}  // namespace clustersim
