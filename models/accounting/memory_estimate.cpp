#include "models/accounting/memory_estimate.hpp"

#include <algorithm>
#include <optional>

#include "models/accounting/stage_parameters.hpp"

namespace clustersim {

namespace {

double d(std::int64_t v) { return static_cast<double>(v); }

}  // namespace

double checkpointed_layer_bytes(const ModelSpec& model, const ActivationSettings& s) {
  double input = s.bytes_per_value * d(s.tokens) * d(model.hidden_size);
  return s.sequence_parallel ? input / d(s.tp) : input;
}

double layer_activation_bytes(const ModelSpec& model, const LayerShapes& layer,
                              const ActivationSettings& s) {
  const double a = s.bytes_per_value;
  const double n = d(s.tokens);
  const double h = d(model.hidden_size);
  const double t = d(s.tp);
  // Tensors of hidden width outside the tensor-parallel region are split only under SP.
  const double outside = s.sequence_parallel ? t : 1.0;
  const double heads = d(model.num_attention_heads);
  const double kv_heads = d(model.num_key_value_heads);
  double bytes = 0;

  // Linear inputs kept for the weight gradient (FP8 under Transformer Engine's FP8); a tensor
  // that another kernel's backward needs stays 16-bit, with an FP8 copy when one is kept too.
  const double li = s.linear_input_bytes;
  const double fp8_copy = li < a ? li : 0.0;
  // Two norm inputs, the attention input and the MLP input (Korthikanti: 4sbh + 2sbh + 2sbh).
  bytes += (2.0 * a + 2.0 * li) * n * h / outside;
  // Dropout masks (1 byte) after attention and after the MLP.
  if (s.hidden_dropout > 0) bytes += 2.0 * n * h / outside;

  // Attention: Q, K, V, and the input of the output projection.
  if (model.attention == AttentionKind::kMultiLatent) {
    // Latents feeding the up-projections are computed by replicated down-projections.
    bytes += a * n * d(model.q_lora_rank + model.kv_lora_rank + model.qk_rope_head_dim);
  }
  bytes += a * n * heads * d(model.head_dim) / t;                       // Q
  bytes += a * n * kv_heads * d(model.head_dim) / t;                    // K
  bytes += a * n * kv_heads * d(model.v_head_dim) / t;                  // V
  // Output projection input: the attention output its backward needs, plus the FP8 copy.
  bytes += (a + fp8_copy) * n * heads * d(model.v_head_dim) / t;
  if (!s.selective_recompute) {
    if (s.materialized_softmax) {
      // Scores of size heads x queries x keys: softmax output, dropout mask, dropout output.
      const double scores = heads * n * d(s.keys) / t;
      bytes += a * scores;
      if (s.attention_dropout > 0) bytes += scores + a * scores;
    } else {
      bytes += 4.0 * heads * n / t;  // flash attention keeps the fp32 log-sum-exp per row
    }
  }

  // MLP activations: gated MLPs keep gate and up outputs and their product; plain MLPs keep the
  // activation input and output; the last of those is the down projection's input. Experts: per
  // routed token (tokens x top-k, balanced routing).
  const double per_width = (model.gated_mlp ? 2.0 : 1.0) * a + li;
  if (!layer.moe) {
    bytes += per_width * n * d(model.intermediate_size) / t;
  } else {
    const double routed = n * d(model.num_experts_per_tok);
    bytes += li * routed * h / outside;  // dispatched expert inputs
    bytes += per_width * routed * d(model.moe_intermediate_size) / d(s.etp);
    bytes += per_width * n * d(model.shared_expert_intermediate_size) / t;
    bytes += 4.0 * n * d(model.num_experts) / outside;  // fp32 router probabilities
  }
  return bytes;
}

BytesPerParameter bytes_per_parameter(const TrainPlan& plan) {
  // Megatron-LM docs/source/api-guide/dist_optimizer: 16-bit weights with FP32 main gradients
  // (bf16) or 16-bit gradients plus an FP32 copy in the optimizer (fp16); Adam keeps an FP32
  // master copy and two moments. grad_reduce_in_bf16, accumulate_allreduce_grads_in_fp32 and
  // the precision-aware optimizer's dtypes change those sizes.
  const double moments = plan.exp_avg_bytes + plan.exp_avg_sq_bytes;
  if (!plan.is_16bit()) return {4, 4, moments};  // FP32 weights are their own master copy
  if (plan.precision == Precision::kFp16) {
    if (plan.accumulate_allreduce_grads_in_fp32) return {2, 4, plan.main_params_bytes + moments};
    return {2, 2, plan.main_params_bytes + 4 + moments};
  }
  const bool bf16_grads = plan.grad_reduce_in_bf16 || plan.main_grads_bytes < 4;
  return {2, bf16_grads ? 2.0 : 4.0, plan.main_params_bytes + moments};
}

double adam_step_bytes_per_parameter(const BytesPerParameter& per, bool fp32_weights) {
  // Read the state and the gradient, write the state back; 16-bit weights are written from
  // the master copy, FP32 weights are the master copy (read and written with the state).
  if (fp32_weights) return 2 * (per.optimizer + per.weights) + per.grads;
  return 2 * per.optimizer + per.grads + per.weights;
}

namespace {

// Micro-batches (in units of a whole stage's layers) whose activations a pipeline rank holds
// at its peak: 1F1B warm-up, or Megatron-LM's interleaved warm-up.
double inflight_microbatches(const ParallelLayout& L, std::int64_t rank) {
  const std::int64_t chunks_total = L.num_microbatches * L.virtual_stages;
  if (L.virtual_stages == 1) return static_cast<double>(std::min(L.pp - rank, L.num_microbatches));
  std::int64_t warmup = (L.pp - rank - 1) * 2 + (L.virtual_stages - 1) * L.pp;
  std::int64_t chunks = std::min(warmup + 1, chunks_total);
  return static_cast<double>(chunks) / static_cast<double>(L.virtual_stages);
}

}  // namespace

MemoryEstimate estimate_memory(const ModelSpec& model, const TrainPlan& plan,
                               const ParallelLayout& L) {
  return estimate_memory(model, model_shapes(model), plan, L);
}

MemoryEstimate estimate_memory(const ModelSpec& model, const ModelShapes& shapes, const TrainPlan& plan,
                               const ParallelLayout& L) {
  const BytesPerParameter per = bytes_per_parameter(plan);
  const std::int64_t dense_dp = L.dp * L.cp;  // distributed optimizer shards over DP x CP
  const std::int64_t expert_dp = L.expert_dp;
  auto sharded = [&](double bytes, std::int64_t dp, bool shard) { return shard ? bytes / d(dp) : bytes; };
  const DpSharding z = plan.data_parallel_sharding_strategy;
  const bool shard_optimizer = z != DpSharding::kNoShard;
  const bool shard_grads = z == DpSharding::kOptimGrads || z == DpSharding::kOptimGradsParams;
  const bool shard_params = z == DpSharding::kOptimGradsParams;

  ActivationSettings s;
  s.tokens = plan.seq_length / L.cp * plan.micro_batch_size;
  s.keys = plan.seq_length;
  s.micro_batch = plan.micro_batch_size;
  s.tp = L.tp;
  s.etp = L.etp;
  s.sequence_parallel = plan.sequence_parallel && L.tp > 1;
  s.selective_recompute = plan.recompute_granularity == Recompute::kSelective;
  s.materialized_softmax = plan.attention_backend == AttentionBackend::kUnfused ||
                           plan.attention_backend == AttentionBackend::kLocal;
  s.bytes_per_value = plan.is_16bit() ? 2.0 : 4.0;
  s.linear_input_bytes = plan.fp8_format != Fp8Format::kNone ? 1.0 : s.bytes_per_value;
  s.attention_dropout = plan.attention_dropout.value_or(model.attention_dropout);
  s.hidden_dropout = plan.hidden_dropout.value_or(model.hidden_dropout);
  const double outside = s.sequence_parallel ? d(L.tp) : 1.0;
  // Layers of one kind (dense or MoE) keep the same activations: each kind is sized once.
  std::optional<double> layer_bytes[2];
  const double checkpointed = checkpointed_layer_bytes(model, s);

  MemoryEstimate estimate;
  for (std::int64_t r = 0; r < L.pp; ++r) {
    StageMemory stage;
    stage.pp_rank = r;
    stage.layers = L.layers_on_rank(r);
    stage.inflight_microbatches = inflight_microbatches(L, r);
    StageParameters p = stage_parameters(shapes, L, r);
    stage.dense_parameters = p.dense;
    stage.expert_parameters = p.expert;
    auto bytes_of = [&](double per_param, bool shard) {
      return sharded(per_param * d(p.dense), dense_dp, shard) +
             sharded(per_param * d(p.expert), expert_dp, shard);
    };
    stage.bytes.weights = bytes_of(per.weights, shard_params);
    stage.bytes.grads = bytes_of(per.grads, shard_grads);
    stage.bytes.optimizer = bytes_of(per.optimizer, shard_optimizer);

    // Activations of one micro-batch through this stage's layers, and the working set of the
    // layer being recomputed, if any.
    double per_microbatch = 0, working = 0;
    for (const auto& chunk : L.chunks[static_cast<std::size_t>(r)]) {
      for (std::int64_t k = 0; k < chunk.num_layers; ++k) {
        const auto& layer = shapes.layers[static_cast<std::size_t>(chunk.first_layer + k)];
        std::optional<double>& bytes = layer_bytes[layer.moe ? 1 : 0];
        if (!bytes) bytes = layer_activation_bytes(model, layer, s);
        const double full = *bytes;
        bool recomputed = false;
        if (plan.recompute_granularity == Recompute::kFull) {
          std::int64_t n = plan.recompute_num_layers.value_or(1);
          if (plan.recompute_method == RecomputeMethod::kBlock) {
            recomputed = k < n;
            if (recomputed) working = std::max(working, full);
          } else {
            // Uniform: groups of n layers keep only the group's input; a group is rebuilt whole.
            recomputed = true;
            if (k % n == 0) per_microbatch += checkpointed;
            working = std::max(working, full * d(std::min(n, chunk.num_layers - k)));
            continue;
          }
        }
        per_microbatch += recomputed ? checkpointed : full;
      }
    }
    double activations = per_microbatch * stage.inflight_microbatches + working;
    const double a = s.bytes_per_value, n = d(s.tokens), h = d(model.hidden_size);
    if (r == 0 && s.hidden_dropout > 0) {
      activations += n * h / outside * stage.inflight_microbatches;  // embedding dropout mask
    }
    if (r == L.pp - 1) {
      // Final norm input, output-layer input, fp32 logits for the loss (Korthikanti 4sbh/t(1+v/h)).
      activations += 2.0 * a * n * h / outside + 4.0 * n * d(model.vocab_size) / d(L.tp);
    }
    stage.bytes.activations = activations;
    estimate.stages.push_back(stage);
  }
  for (std::size_t i = 1; i < estimate.stages.size(); ++i) {
    if (estimate.stages[i].bytes.total() > estimate.stages[estimate.peak_stage].bytes.total()) {
      estimate.peak_stage = i;
    }
  }
  return estimate;
}

}  // namespace clustersim
