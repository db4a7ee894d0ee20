#pragma once
// One training iteration of a plan, lowered to operations with shapes: what every rank of a
// pipeline stage runs for one micro-batch (forward, backward, recomputation), what it runs once
// per step (data-parallel gradient and parameter collectives, optimizer), and the pipeline
// transfers between stages. Ranks of a stage behave alike (TP/CP/DP symmetry), so one rank per
// stage describes them all. Priced by CostModel; scheduled by the estimator (closed form) and
// the SimGrid replay. Lowering rules: docs/lowering.md.
#include <cstdint>
#include <string_view>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/document_packing.hpp"
#include "models/cost/cost_forms.hpp"
#include "models/cost/measurement_record.hpp"
#include "models/accounting/model_shapes.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/inputs/train_plan.hpp"

namespace clustersim {

enum class OpKind { kGemm, kAttention, kMemoryBound, kCollective, kMoeAllToAll };
enum class Phase { kForward, kBackward, kRecompute, kStep };
// What an operation's time is attributed to in breakdowns.
// kStepFixed: once-per-step host-side work of the step (the gradient-norm pass of clipping).
enum class Cost { kCompute, kTpComm, kCpComm, kEpComm, kDpComm, kPpComm, kOptimizer, kStepFixed };
// The sub-module of a MoE layer an op belongs to in Megatron-LM's fine-grained layer schedule
// (megatron/core/models/gpt/fine_grained_callables.py): attention through the router and the
// token permutation (compute stream), dispatch (communication stream), the routed experts
// (compute stream), combine with the unpermutation after it (communication stream). kNone: not
// part of a MoE layer's nodes (dense layers, embedding, loss, FSDP collectives).
enum class MoeNode : std::uint8_t { kNone, kAttention, kDispatch, kExperts, kCombine };
// The process group a collective runs in.
enum class Group { kTp, kCp, kEp, kEtp, kDp, kExpertDp, kPp };

std::string_view to_string(Phase phase);
std::string_view to_string(Cost cost);
std::string_view to_string(Group group);

struct WorkOp {
  OpKind kind = OpKind::kGemm;
  Phase phase = Phase::kForward;
  Cost cost = Cost::kCompute;
  std::string_view name;  // static: "qkv", "attention", "tp_all_gather", ...
  std::int64_t count = 1;  // identical repeats (layers of a chunk, experts)
  // kGemm
  GemmShapeDims gemm;
  Dtype dtype = Dtype::kBf16;
  // kAttention
  AttentionRecord attention;
  // kMemoryBound: bytes read plus written; kCollective / kMoeAllToAll: nccl-tests size
  // (collective) or bytes per rank (MoE).
  double bytes = 0;
  CollectiveKind collective = CollectiveKind::kAllReduce;
  Group group = Group::kTp;
  int group_ranks = 1;
  int group_nodes = 1;
  double imbalance = 1.0;  // MoE routing: max / mean tokens per expert
  // The GEMM this communication can overlap with under tp_comm_overlap (index into the same
  // list, -1 = none), and the overlap pattern. CP ring transfers and, under
  // moe_shared_expert_overlap, MoE all-to-alls name the kernel they hide behind the same way.
  int overlaps_gemm = -1;
  OverlapPattern overlap_pattern = OverlapPattern::kAllGatherGemm;
  double flops = 0;  // FLOPs this op executes (recomputation included), per call
  double parameters = 0;  // data-parallel step collectives: the parameters they carry
  bool grouped = false;   // kGemm: a MoE layer's expert GEMMs, one grouped call over its experts
  MoeNode moe_node = MoeNode::kNone;

  bool operator==(const WorkOp&) const = default;
};

// What one rank of a pipeline stage runs for one micro-batch, all its model chunks together.
struct StageProgram {
  std::int64_t pp_rank = 0;
  std::int64_t layers = 0;
  std::vector<WorkOp> forward;
  std::vector<WorkOp> backward;   // includes the recomputed forward ops (Phase::kRecompute)
  std::vector<WorkOp> step;       // once per iteration: gradient sync, parameter gather, optimizer
  double parameters = 0;          // parameters this rank holds (dense + its share of experts)
  double dense_parameters = 0;    // of which synchronised over the dense data-parallel group
  double expert_parameters = 0;   // of which synchronised over the expert data-parallel group
};

struct Workload {
  ParallelLayout layout;
  Dtype dtype = Dtype::kBf16;
  std::vector<StageProgram> stages;  // one per pipeline rank
  double p2p_bytes = 0;              // activation (or gradient) sent between stages per micro-batch
  int p2p_crosses_nodes = 0;         // 1 when some neighbouring stages are on different nodes
  double model_flops_per_step = 0;     // model FLOPs of one iteration (no recomputation), all ranks
  double hardware_flops_per_step = 0;  // FLOPs executed in one iteration, all ranks
  double tokens_per_step = 0;
  // reset_attention_mask with a document-length histogram: attention priced at E[r] of a full
  // causal one (r = sum(l^2) / S^2 per packed sequence), r's spread drives the data imbalance.
  std::optional<DocumentLengths> documents;
  PackedAttention packed_attention;
  bool overlap_grad_reduce = false;
  bool overlap_param_gather = false;
  // overlap_moe_expert_parallel_comm: a forward's MoE-layer nodes run beside a backward's
  // (Megatron-LM's combined 1F1B schedule, models/planning/moe_overlap_schedule.hpp).
  bool overlap_moe_expert_parallel_comm = false;
  bool delay_wgrad_compute = false;  // weight gradients after the backward all-to-all's launch
  // The SMs the EP all-to-all's kernels hold while they run beside compute: NCCL's p2p
  // channels for alltoall, DeepEP's moe_deepep_num_sms for flex (0: none priced).
  int ep_comm_sms = 0;
  std::int64_t gpu_sm_count = 0;  // the cluster's SMs per GPU
  bool overlap_p2p_comm = true;  // interleaved schedule only
  // Parameters per data-parallel bucket on the first pipeline stage when gradient reduction
  // overlaps the backward (Megatron-LM's ddp_bucket_size); 0 = one bucket.
  double grad_bucket_parameters = 0;
  // Gradient clipping's all-reduce of the squared norm over every rank, once per step (priced
  // with the stage's kStepFixed ops; not in the stage lists, which hold per-group work).
  WorkOp grad_norm_all_reduce;
};

// Lowers a validated plan (derive_layout) on a cluster.
Workload lower_training(const ModelSpec& model, const TrainPlan& plan, const ParallelLayout& layout,
                        const ClusterSpec& cluster);
// The same with the model's shapes (model_shapes(model)) computed once by the caller, as a
// search over many plans of one model does.
Workload lower_training(const ModelSpec& model, const ModelShapes& shapes, const TrainPlan& plan,
                        const ParallelLayout& layout, const ClusterSpec& cluster);

}  // namespace clustersim
