#pragma once
// Per-GPU memory of a training plan: weights, gradients, optimizer states and activations,
// for every pipeline stage. Activations follow Korthikanti et al. 2022 ("Reducing Activation
// Recomputation in Large Transformer Models", arXiv:2205.05198), generalised term by term to
// GQA/MLA attention, gated MLPs and experts. docs/memory-model.md derives every term.
#include <cstdint>
#include <vector>

#include "models/accounting/model_shapes.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/inputs/train_plan.hpp"

namespace clustersim {

// What one transformer layer stores for the backward pass of one micro-batch.
struct ActivationSettings {
  std::int64_t tokens = 0;       // tokens of the micro-batch on this rank: seq/CP * micro batch
  std::int64_t keys = 0;         // keys each query may see: the full sequence length
  std::int64_t micro_batch = 1;  // b, for the s^2 softmax terms
  std::int64_t tp = 1;
  std::int64_t etp = 1;
  bool sequence_parallel = false;
  bool selective_recompute = false;   // Megatron's "selective": core attention is recomputed
  bool materialized_softmax = false;  // unfused attention stores the s x s scores
  double bytes_per_value = 2;         // 16-bit activations
  // Bytes per value of a tensor kept only as a linear's input for its weight gradient:
  // Transformer Engine keeps FP8 linears' inputs in FP8 (1).
  double linear_input_bytes = 2;
  double attention_dropout = 0;
  double hidden_dropout = 0;
};

// Bytes one layer keeps per micro-batch when nothing is recomputed (or core attention only).
double layer_activation_bytes(const ModelSpec& model, const LayerShapes& layer,
                              const ActivationSettings& settings);
// Bytes a fully recomputed layer keeps: its input.
double checkpointed_layer_bytes(const ModelSpec& model, const ActivationSettings& settings);

struct MemoryBreakdown {
  double weights = 0, grads = 0, optimizer = 0, activations = 0;
  double total() const { return weights + grads + optimizer + activations; }
};

struct StageMemory {
  std::int64_t pp_rank = 0;
  std::int64_t layers = 0;
  double inflight_microbatches = 0;  // micro-batches whose activations are held at the peak
  std::int64_t dense_parameters = 0;   // parameters on one GPU of this stage, non-expert
  std::int64_t expert_parameters = 0;  // routed-expert parameters on one GPU of this stage
  MemoryBreakdown bytes;
};

struct MemoryEstimate {
  std::vector<StageMemory> stages;
  std::size_t peak_stage = 0;  // index of the stage with the largest total
  const StageMemory& peak() const { return stages.at(peak_stage); }
};

// Bytes per parameter for weights, gradients and optimizer state (Adam), before sharding;
// Megatron-LM's layout: docs/memory-model.md.
struct BytesPerParameter {
  double weights = 0, grads = 0, optimizer = 0;
};
BytesPerParameter bytes_per_parameter(const TrainPlan& plan);
// Memory traffic of one Adam step per parameter of the local shard.
double adam_step_bytes_per_parameter(const BytesPerParameter& per, bool fp32_weights);

MemoryEstimate estimate_memory(const ModelSpec& model, const TrainPlan& plan,
                               const ParallelLayout& layout);
// The same with `shapes` = model_shapes(model) computed once by the caller, as a search over
// many plans of one model does.
MemoryEstimate estimate_memory(const ModelSpec& model, const ModelShapes& shapes, const TrainPlan& plan,
                               const ParallelLayout& layout);

}  // namespace clustersim
