#pragma once
// A training parallel plan, named as Megatron-LM names its arguments (snake_case).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/inputs/document_lengths.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/routing_spec.hpp"

namespace clustersim {

enum class Recompute { kNone, kSelective, kFull };
enum class RecomputeMethod { kUniform, kBlock };
// Megatron-LM's data_parallel_sharding_strategy: ZeRO-0 / 1 / 2 / 3.
enum class DpSharding { kNoShard, kOptim, kOptimGrads, kOptimGradsParams };
enum class Precision { kFp32, kBf16, kFp16 };
enum class Fp8Format { kNone, kE4m3, kHybrid };
enum class AttentionBackend { kAuto, kFlash, kFused, kUnfused, kLocal };
enum class ParallelDim { kTp, kCp, kEp, kDp, kPp };

struct TrainPlan {
  std::string source;  // file (or "--from-megatron-args") the plan came from

  std::int64_t tensor_model_parallel_size = 1;
  std::int64_t pipeline_model_parallel_size = 1;
  std::int64_t context_parallel_size = 1;
  std::int64_t expert_model_parallel_size = 1;
  std::optional<std::int64_t> expert_tensor_parallel_size;  // Megatron: defaults to TP
  std::optional<std::int64_t> num_layers_per_virtual_pipeline_stage;
  std::optional<std::int64_t> num_virtual_stages_per_pipeline_rank;
  std::optional<std::int64_t> decoder_first_pipeline_num_layers;
  std::optional<std::int64_t> decoder_last_pipeline_num_layers;
  // Megatron-LM: the embedding (first stage) and the loss (last stage) each take a layer's
  // place when the layers are split over the (virtual) pipeline stages.
  bool account_for_embedding_in_pipeline_split = false;
  bool account_for_loss_in_pipeline_split = false;

  std::int64_t micro_batch_size = 1;
  std::optional<std::int64_t> global_batch_size;  // default: micro_batch_size x DP
  std::int64_t seq_length = 0;

  bool sequence_parallel = false;
  Recompute recompute_granularity = Recompute::kNone;
  RecomputeMethod recompute_method = RecomputeMethod::kUniform;
  std::optional<std::int64_t> recompute_num_layers;

  bool use_distributed_optimizer = false;
  DpSharding data_parallel_sharding_strategy = DpSharding::kNoShard;
  bool overlap_grad_reduce = false;
  bool overlap_param_gather = false;
  // Parameters per gradient bucket; default max(40M, 1M x DP x CP) when overlap_grad_reduce.
  std::optional<std::int64_t> ddp_bucket_size;
  bool tp_comm_overlap = false;
  bool cross_entropy_loss_fusion = false;  // Megatron-LM's fused vocab-parallel cross-entropy
  // Interleaved schedule: pipeline sends/receives overlap the next chunk's compute
  // (Megatron-LM's command-line default; --no-overlap-p2p-communication turns it off).
  bool overlap_p2p_comm = true;
  // MoE: dispatch/combine hidden behind the shared experts' GEMMs of the same layer, and the
  // combined 1F1B schedule that hides one micro-batch's all-to-all behind another's compute.
  bool moe_shared_expert_overlap = false;
  bool overlap_moe_expert_parallel_comm = false;
  // Megatron-LM's delay_wgrad_compute: inside the combined 1F1B schedule, the weight gradients
  // of the experts and of attention run after the backward all-to-all is launched.
  bool delay_wgrad_compute = false;

  Precision precision = Precision::kFp32;
  Fp8Format fp8_format = Fp8Format::kNone;
  // Gradient buffer and reduction: Megatron-LM keeps them in FP32 for bf16 unless
  // grad_reduce_in_bf16 (or main_grads_dtype bf16), and in the 16-bit type for fp16 unless
  // accumulate_allreduce_grads_in_fp32.
  bool grad_reduce_in_bf16 = false;
  bool accumulate_allreduce_grads_in_fp32 = false;
  // Megatron-LM's precision-aware optimizer: bytes per value of the main gradients, the main
  // (master) parameters and Adam's two moments; FP32 (4) without it.
  bool use_precision_aware_optimizer = false;
  double main_grads_bytes = 4, main_params_bytes = 4, exp_avg_bytes = 4, exp_avg_sq_bytes = 4;
  AttentionBackend attention_backend = AttentionBackend::kAuto;
  // Megatron-LM's --reset-attention-mask: each packed document attends only to itself; with a
  // document-length histogram (clustersim's "document_lengths") attention is priced per packing.
  bool reset_attention_mask = false;
  std::optional<DocumentLengths> document_lengths;
  std::optional<double> attention_dropout;  // default: the model config's value
  std::optional<double> hidden_dropout;

  std::optional<std::int64_t> moe_router_topk;  // default: the model's num_experts_per_tok
  std::string moe_token_dispatcher_type = "alltoall";
  // Routed tokens on the busiest expert-parallel rank over the mean (clustersim's, not a
  // Megatron-LM argument): its expert GEMMs and all-to-all set the pace. 1 = balanced.
  double moe_routing_imbalance = 1.0;
  // How the router spreads tokens over the experts (clustersim's, docs/moe.md): "balanced"
  // (Megatron's moe_router_force_load_balancing, what published benchmarks run), "uniform",
  // "zipf<s>", "dirichlet<alpha>" (the harness's routing_generator definitions) or
  // "histogram:<file>", with moe_routing_seed; absent = moe_routing_imbalance applies.
  std::optional<RoutingModel> moe_routing;
  // Megatron-LM's capacity factor: each expert takes at most CF x its balanced share of a
  // rank's routed tokens, the rest are dropped; absent = dropless.
  std::optional<double> moe_expert_capacity_factor;
  bool moe_pad_expert_input_to_capacity = false;

  // Rank order, fastest-varying first (Megatron's default "tp-cp-ep-dp-pp").
  std::array<ParallelDim, 5> rank_order{ParallelDim::kTp, ParallelDim::kCp, ParallelDim::kEp,
                                        ParallelDim::kDp, ParallelDim::kPp};

  // Megatron model-shape flags found in the plan (e.g. a pasted command line); they are
  // cross-checked against the model config, never used instead of it.
  std::optional<std::int64_t> num_layers, hidden_size, num_attention_heads, num_query_groups,
      ffn_hidden_size, num_experts, moe_ffn_hidden_size;

  std::int64_t tp() const { return tensor_model_parallel_size; }
  std::int64_t pp() const { return pipeline_model_parallel_size; }
  std::int64_t cp() const { return context_parallel_size; }
  std::int64_t ep() const { return expert_model_parallel_size; }
  std::int64_t etp() const { return expert_tensor_parallel_size.value_or(tensor_model_parallel_size); }
  bool is_16bit() const { return precision != Precision::kFp32; }
};

// Reads a plan JSON (path or inline JSON). Types and ranges are checked here; rules that need
// the model or the world size are in plan_validation.
TrainPlan load_train_plan(const std::string& source, Diagnostics& diag);

// The keys of `plan` (a plan's JSON object) that no plan reads, each with the hint
// load_train_plan gives for it ("did you mean ...?" or the valid keys). Values are not judged:
// a sweep grid checks its keys once, before it makes any plan.
std::vector<std::pair<std::string, std::string>> unknown_plan_keys(const nlohmann::json& plan);

// Builds a plan from a pasted Megatron-LM command line ("--tensor-model-parallel-size 8 ...").
// Flags clustersim does not use are reported as warnings in `diag`.
TrainPlan train_plan_from_megatron_args(const std::string& command_line, Diagnostics& diag);

std::string to_string(ParallelDim dim);
std::string rank_order_string(const std::array<ParallelDim, 5>& order);

}  // namespace clustersim
