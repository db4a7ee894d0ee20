#pragma once
// Megatron-LM's combined 1F1B schedule of the EP all-to-all overlap
// (overlap_moe_expert_parallel_comm), layer by layer, as its code issues it
// (TransformerLayerSchedulePlan.run and TransformerModelChunkSchedulePlan.run,
// megatron/core/models/common/model_chunk_schedule_plan.py; nodes from
// megatron/core/models/gpt/fine_grained_callables.py; NVIDIA/Megatron-LM b0cc2706, the same
// order at 14aaa7e0 of 2026-05-19). One micro-batch's forward of a model chunk runs beside
// another's backward: forward layer i with backward layer L-1-i. Each layer splits into four
// nodes: attention (through the router and the permutation) and the experts on the compute
// stream, dispatch and combine (the all-to-all, then the unpermutation) on a communication
// stream. Per pair the issue order is
//   combine_b, attn_f, experts_b, dispatch_f, [experts_b wgrad], dispatch_b, experts_f,
//   combine_f, attn_b, [attn_b wgrad]
// and a node waits for the node issued before it in its own pass (one CUDA event per
// micro-batch and chunk, recorded by every node), and for the node before it on its stream.
// The weight-gradient nodes (delay_wgrad_compute) wait for neither pass's event: they only
// follow the compute stream. So a dispatch hides only behind the other pass's experts or
// attention that happen to run beside it, not behind the other pass as a whole.
//
// While an all-to-all's kernels run they hold `comm_sms` of the GPU's `sm_count` SMs: the
// compute beside them runs at (sm_count - comm_sms) / sm_count of its speed (the rule the
// interference mechanism applies to DP collectives). Two compute kernels side by side (the
// unpermutation on the communication stream and a compute node) share the GPU equally.
#include <cstdint>

namespace clustersim {

// One MoE layer's nodes in one pass, seconds. Backward: the attention and experts times are
// their input gradients, the *_wgrad_s their weight gradients.
struct MoeLayerNodes {
  double attention_s = 0, attention_wgrad_s = 0;
  double experts_s = 0, experts_wgrad_s = 0;
  double dispatch_comm_s = 0, dispatch_compute_s = 0;
  double combine_comm_s = 0, combine_compute_s = 0;

  double total_s() const;
  double comm_s() const { return dispatch_comm_s + combine_comm_s; }
};

struct CombinedChunk {
  MoeLayerNodes forward, backward;  // per layer
  std::int64_t layers = 1;          // MoE layers of the chunk
  bool delay_wgrad_compute = false;
  int comm_sms = 0;
  std::int64_t sm_count = 132;
};

// The time both streams take for the chunk's layer pairs, from the first node's start to the
// last node's end.
double combined_chunk_s(const CombinedChunk& chunk);

// Of a pipeline rank's forward passes (and as many backward passes), the share that run paired
// in the combined schedule: Megatron-LM runs the warmup forwards alone and the cooldown
// backwards alone (schedules.py get_pp_rank_microbatches; without pipelining, the first
// forward and the last backward, combined_1f1b.py).
double combined_paired_share(std::int64_t pp, std::int64_t pp_rank, std::int64_t virtual_stages,
                             std::int64_t microbatches);

}  // namespace clustersim
