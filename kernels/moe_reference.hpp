#pragma once
// CPU reference of an MoE layer's data movement and expert GEMM, as the harness runs it on GPUs
// (moe_layer.cu) and CPU threads: tokens are dispatched to their top-k experts (grouped by
// expert, in token order), every expert multiplies its tokens by its weight, and the combine
// sums each token's expert outputs scaled by its routing weights. CUDA-free.
#include <cstdint>
#include <span>
#include <vector>

namespace clustersim::kernels {

// Token t's k-th choice is expert experts[t * topk + k] with weight weights[t * topk + k].
struct MoeRouting {
  std::int64_t tokens = 0;
  std::int64_t topk = 0;
  std::int64_t num_experts = 0;
  std::vector<std::int32_t> experts;
  std::vector<float> weights;
};

// Throws std::invalid_argument on sizes that disagree, an expert id out of range, or a token
// that names the same expert twice.
void validate_moe_routing(const MoeRouting& routing);

// Where each (token, choice) goes: slots grouped by expert, ascending token order inside one.
struct MoeDispatchPlan {
  std::vector<std::int64_t> tokens_per_expert;  // [num_experts]
  std::vector<std::int64_t> expert_offsets;     // [num_experts + 1], prefix sums
  std::vector<std::int64_t> slot_source;        // [tokens * topk]: slot -> t * topk + k
  std::vector<std::int64_t> slot_of_choice;     // inverse: t * topk + k -> slot
};
MoeDispatchPlan plan_moe_dispatch(const MoeRouting& routing);

// Experts are dealt to ranks in contiguous blocks: expert e lives on rank e / (E / ranks).
// send_counts[src * ranks + dst] = tokens rank src sends to rank dst when every rank holds
// routing.tokens / ranks consecutive tokens (tokens must divide evenly).
std::vector<std::int64_t> moe_send_counts(const MoeRouting& routing, std::int64_t ranks);

// y[t] = sum_k weight(t, k) * x[t] W[expert(t, k)], via dispatch, grouped GEMM, combine, in
// float. x: [tokens, hidden]; w: [num_experts, hidden, ffn] row-major; y: [tokens, ffn].
std::vector<float> moe_layer_reference(const MoeRouting& routing, std::int64_t hidden,
                                       std::int64_t ffn, std::span<const float> x,
                                       std::span<const float> w);

// max over experts of tokens / mean tokens per expert; 1 for perfectly uniform routing.
double moe_imbalance(const std::vector<std::int64_t>& tokens_per_expert);

}  // namespace clustersim::kernels
