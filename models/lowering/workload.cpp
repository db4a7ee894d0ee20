#include "models/lowering/workload.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "models/lowering/gradient_buckets.hpp"
#include "models/accounting/memory_estimate.hpp"
#include "models/accounting/stage_parameters.hpp"
#include "models/accounting/model_shapes.hpp"
#include "models/accounting/training_flops.hpp"
#include "models/accounting/expert_routing.hpp"
#include "models/cost/nccl_tuner.hpp"

namespace clustersim {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::kForward: return "forward";
    case Phase::kBackward: return "backward";
    case Phase::kRecompute: return "recompute";
    case Phase::kStep: return "step";
  }
  return "?";
}

std::string_view to_string(Cost cost) {
  switch (cost) {
    case Cost::kCompute: return "compute";
    case Cost::kTpComm: return "tp_comm";
    case Cost::kCpComm: return "cp_comm";
    case Cost::kEpComm: return "ep_comm";
    case Cost::kDpComm: return "dp_comm";
    case Cost::kPpComm: return "pp_comm";
    case Cost::kOptimizer: return "optimizer";
    case Cost::kStepFixed: return "step_fixed";
  }
  return "?";
}

std::string_view to_string(Group group) {
  switch (group) {
    case Group::kTp: return "tp";
    case Group::kCp: return "cp";
    case Group::kEp: return "ep";
    case Group::kEtp: return "etp";
    case Group::kDp: return "dp";
    case Group::kExpertDp: return "expert_dp";
    case Group::kPp: return "pp";
  }
  return "?";
}

namespace {

// Bytes per activation element on the wire and in elementwise kernels (16-bit training).
constexpr double kActivationBytes = 2;

// Nodes a group of `size` ranks spans when consecutive members are `stride` ranks apart and
// ranks fill nodes of `gpus_per_node` in order.
int nodes_spanned(std::int64_t size, std::int64_t stride, std::int64_t gpus_per_node) {
  if (size <= 1) return 1;
  std::int64_t span = size * stride;
  std::int64_t nodes = (span + gpus_per_node - 1) / gpus_per_node;
  return static_cast<int>(std::clamp<std::int64_t>(nodes, 1, size));
}

class Lowering {
 public:
  Lowering(const ModelSpec& m, const ModelShapes& shapes, const TrainPlan& p, const ParallelLayout& l,
           const ClusterSpec& c)
      : m_(m), shapes_(shapes), p_(p), l_(l), c_(c), gpn_(c.node.gpus_per_node) {
    dtype_ = compute_dtype(p);
    tokens_ = l.micro_batch_size * l.seq_length / l.cp;  // per CP rank, one micro-batch
    sp_tokens_ = p.sequence_parallel ? tokens_ / l.tp : tokens_;
    tp_nodes_ = nodes_spanned(l.tp, 1, gpn_);
    cp_nodes_ = nodes_spanned(l.cp, l.tp, gpn_);
    ep_nodes_ = nodes_spanned(l.ep, l.tp * l.cp, gpn_);
    dp_nodes_ = nodes_spanned(l.dp * l.cp, l.tp, gpn_);
    expert_dp_nodes_ = nodes_spanned(l.expert_dp, l.ep * l.etp, gpn_);
    topk_ = p.moe_router_topk.value_or(m.num_experts_per_tok);
    per_parameter_ = bytes_per_parameter(p);
    expert_rows_ = p.moe_routing_imbalance;
    if (m.is_moe() && (p.moe_routing || p.moe_expert_capacity_factor)) {
      // The busiest EP rank's routed rows over the balanced share (docs/moe.md).
      const RoutingModel routing = p.moe_routing.value_or(RoutingModel{});
      ExpertLoadInput in;
      in.tokens_per_rank = static_cast<double>(sp_tokens_);
      in.topk = topk_;
      in.experts = m.num_experts;
      in.ep = l.ep;
      in.capacity_factor = p.moe_expert_capacity_factor;
      in.pad_to_capacity = p.moe_pad_expert_input_to_capacity;
      in.random = routing.kind != RoutingKind::kBalanced;
      expert_rows_ = expert_load(in, expert_inclusion(routing, m.num_experts, topk_)).imbalance;
    }
  }

  Workload lower() {
    Workload w;
    w.layout = l_;
    w.dtype = dtype_;
    for (std::int64_t r = 0; r < l_.pp; ++r) w.stages.push_back(stage(r));
    w.p2p_bytes = static_cast<double>(sp_tokens_) * m_.hidden_size * kActivationBytes;
    // Some neighbouring stages on different nodes: the pipeline runs at its slowest hop's pace.
    w.p2p_crosses_nodes = nodes_spanned(l_.pp, l_.tp * l_.cp * l_.dp, gpn_) > 1 ? 1 : 0;
    w.tokens_per_step = static_cast<double>(l_.global_batch_size) * l_.seq_length;
    w.grad_norm_all_reduce = collective(Phase::kStep, "grad_norm_all_reduce", Cost::kStepFixed, CollectiveKind::kAllReduce,
                                        8, Group::kDp, l_.world, nodes_spanned(l_.world, 1, gpn_));
    w.overlap_grad_reduce = p_.overlap_grad_reduce;
    if (p_.reset_attention_mask && p_.document_lengths) {
      w.documents = p_.document_lengths;
      w.packed_attention = packed_attention(*w.documents, l_.seq_length);
    }
    w.overlap_param_gather = p_.overlap_param_gather;
    w.overlap_moe_expert_parallel_comm = p_.overlap_moe_expert_parallel_comm;
    w.delay_wgrad_compute = p_.delay_wgrad_compute;
    w.ep_comm_sms = ep_comm_sms();
    w.gpu_sm_count = c_.gpu.sm_count;
    w.overlap_p2p_comm = p_.overlap_p2p_comm;
    if (p_.overlap_grad_reduce) {
      w.grad_bucket_parameters = p_.ddp_bucket_size ? static_cast<double>(*p_.ddp_bucket_size)
                                                    : default_bucket_parameters(l_.dp * l_.cp);
    }
    for (const auto& s : w.stages) {
      double per_rank = 0;
      for (const auto* list : {&s.forward, &s.backward}) {
        for (const auto& op : *list) per_rank += op.flops * static_cast<double>(op.count);
      }
      // Every micro-batch, on every TP x CP x DP rank of the stage.
      w.hardware_flops_per_step += per_rank * static_cast<double>(l_.num_microbatches) *
                                   static_cast<double>(l_.tp * l_.cp * l_.dp);
    }
    w.model_flops_per_step =
        training_flops_per_token(m_, shapes_, l_.seq_length, Recompute::kNone, 0.0).model() * w.tokens_per_step;
    return w;
  }

 private:
  WorkOp gemm(Phase phase, std::string_view name, std::int64_t m, std::int64_t n, std::int64_t k,
              std::int64_t batch, double flops_per_call) {
    WorkOp op;
    op.kind = OpKind::kGemm;
    op.phase = phase;
    op.name = name;
    op.gemm = {m, n, k, batch};
    op.dtype = dtype_;
    op.flops = flops_per_call;
    return op;
  }

  WorkOp collective(Phase phase, std::string_view name, Cost cost, CollectiveKind kind, double bytes,
                    Group group, std::int64_t ranks, int nodes) {
    WorkOp op;
    op.kind = OpKind::kCollective;
    op.phase = phase;
    op.cost = cost;
    op.name = name;
    op.collective = kind;
    op.bytes = bytes;
    op.group = group;
    op.group_ranks = static_cast<int>(ranks);
    op.group_nodes = nodes;
    return op;
  }

  WorkOp memory(Phase phase, std::string_view name, double bytes) {
    WorkOp op;
    op.kind = OpKind::kMemoryBound;
    op.phase = phase;
    op.name = name;
    op.bytes = bytes;
    return op;
  }

  // A linear's forward GEMM on this rank, and its two backward GEMMs (input and weight grads).
  void linear(const Linear& lin, std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd,
              std::vector<WorkOp>* recompute) {
    std::int64_t m = tokens_, k = lin.in_features, n = lin.out_features, batch = 1;
    if (lin.sharding == Sharding::kTensorParallel) {
      (lin.row_parallel() ? k : n) /= l_.tp;
    } else if (lin.sharding == Sharding::kExpert) {
      // Balanced routing: each EP rank receives its tokens' top-k copies, spread over its
      // E/EP experts; expert-tensor-parallel ranks gather the tokens and split the width.
      // With routing imbalance the busiest rank's share sets the pace.
      std::int64_t local_experts = std::max<std::int64_t>(1, lin.copies / l_.ep);
      double routed = static_cast<double>(sp_tokens_) * topk_ * l_.etp * expert_rows_ /
                      static_cast<double>(local_experts);
      m = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(routed)));
      (lin.row_parallel() ? k : n) /= l_.etp;
      batch = local_experts;
    } else if (lin.role == Role::kRouter) {
      m = sp_tokens_;
    }
    double flops = 2.0 * static_cast<double>(m) * n * k * batch;
    // Transformer Engine keeps the output layer in 16 bits; FP8 linears cast (and transpose,
    // for the weight gradient) their input forward and their output gradient backward:
    // read 2 bytes, write two 1-byte copies per element.
    const Dtype dt = lin.role == Role::kLmHead && dtype_ == Dtype::kFp8 ? Dtype::kBf16 : dtype_;
    const bool fp8 = dt == Dtype::kFp8;
    const double elements_in = static_cast<double>(m) * k * batch, elements_out = static_cast<double>(m) * n * batch;
    auto forward = [&](std::vector<WorkOp>& list, Phase phase) {
      if (fp8) list.push_back(memory(phase, "fp8_cast_transpose", 4 * elements_in));
      list.push_back(gemm(phase, lin.name, m, n, k, batch, flops));
      list.back().dtype = dt;
    };
    const bool grouped = lin.sharding == Sharding::kExpert;
    forward(fwd, Phase::kForward);
    fwd.back().grouped = grouped;
    if (recompute) {
      forward(*recompute, Phase::kRecompute);
      recompute->back().grouped = grouped;
    }
    if (fp8) bwd.push_back(memory(Phase::kBackward, "fp8_cast_transpose", 4 * elements_out));
    bwd.push_back(gemm(Phase::kBackward, "dgrad", m, k, n, batch, flops));
    bwd.back().dtype = dt;
    bwd.back().grouped = grouped;
    bwd.push_back(gemm(Phase::kBackward, "wgrad", k, n, m, batch, flops));
    bwd.back().dtype = dt;
    bwd.back().grouped = grouped;
  }

  // Megatron runs Q, K and V as one GEMM, and gate and up as one: the same FLOPs in wider,
  // faster GEMMs. Returns the layer's linears with those merged.
  static std::vector<Linear> fused_linears(const LayerShapes& shapes) {
    std::vector<Linear> out;
    auto merge = [&](std::string_view into, std::initializer_list<std::string_view> names) {
      Linear fused{};
      bool any = false;
      for (const auto& l : shapes.linears) {
        if (std::find(names.begin(), names.end(), l.name) == names.end()) continue;
        if (!any) {
          fused = l;
          fused.name = into;
          fused.out_features = 0;
        }
        fused.out_features += l.out_features;
        any = true;
      }
      if (any) out.push_back(fused);
    };
    merge("qkv", {"q_proj", "k_proj", "v_proj"});
    merge("fc1", {"gate_proj", "up_proj"});
    merge("shared_fc1", {"shared_gate", "shared_up"});
    merge("expert_fc1", {"expert_gate", "expert_up"});
    for (const auto& l : shapes.linears) {
      static constexpr std::string_view kMerged[] = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj",
                                                     "shared_gate", "shared_up", "expert_gate", "expert_up"};
      if (std::find(std::begin(kMerged), std::end(kMerged), l.name) == std::end(kMerged)) out.push_back(l);
    }
    return out;
  }

  // Where a block's ops start in the forward, backward and recompute lists of its layer.
  struct BlockStart {
    std::size_t fwd, bwd, rec;
  };

  // The first (or last) GEMM from `begin` on named `name` (any name when empty); -1 if none.
  static int find_gemm(const std::vector<WorkOp>& ops, std::size_t begin, std::string_view name, bool last) {
    int found = -1;
    for (std::size_t i = begin; i < ops.size(); ++i) {
      if (ops[i].kind != OpKind::kGemm || (!name.empty() && ops[i].name != name)) continue;
      found = static_cast<int>(i);
      if (!last) break;
    }
    return found;
  }

  // Tensor-parallel collectives around a block (attention or MLP) of a layer. With
  // tp_comm_overlap, each runs beside the GEMM Transformer Engine's userbuffers pair it with
  // (TE v1.8, the release of NeMo 24.07 and Megatron-Core r0.8; module/base.py's default methods,
  // module/linear.py and module/layernorm_linear.py backward): forward, the all-gather
  // pipelined with the block's first GEMM and the reduce-scatter with its last (also when
  // recomputed); backward, the output gradient's all-gather pipelined with the last linear's
  // input-gradient GEMM, the input's re-gather (bulk) beside the first linear's input-gradient
  // GEMM, and that gradient's reduce-scatter (bulk) beside the first linear's weight-gradient
  // GEMM (Megatron-Core's defaults tp_comm_bulk_dgrad and tp_comm_bulk_wgrad).
  void tp_block_comm(std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd, std::vector<WorkOp>* rec, BlockStart at) {
    if (l_.tp == 1) return;
    double full = static_cast<double>(tokens_) * m_.hidden_size * kActivationBytes;
    auto add = [&](std::vector<WorkOp>& list, Phase phase, std::string_view name, CollectiveKind kind,
                   int overlaps, OverlapPattern pattern) {
      WorkOp op = collective(phase, name, Cost::kTpComm, kind, full, Group::kTp, l_.tp, tp_nodes_);
      if (p_.tp_comm_overlap) {
        op.overlaps_gemm = overlaps;
        op.overlap_pattern = pattern;
      }
      list.push_back(op);
    };
    if (p_.sequence_parallel) {
      // all-gather before the block's first GEMM, reduce-scatter after its last.
      add(fwd, Phase::kForward, "tp_all_gather", CollectiveKind::kAllGather, find_gemm(fwd, at.fwd, {}, false),
          OverlapPattern::kAllGatherGemm);
      add(fwd, Phase::kForward, "tp_reduce_scatter", CollectiveKind::kReduceScatter,
          find_gemm(fwd, at.fwd, {}, true), OverlapPattern::kGemmReduceScatter);
      if (rec) {
        // Indices into the recompute list; layer() moves them along when it appends the list.
        add(*rec, Phase::kRecompute, "tp_all_gather", CollectiveKind::kAllGather, find_gemm(*rec, at.rec, {}, false),
            OverlapPattern::kAllGatherGemm);
        add(*rec, Phase::kRecompute, "tp_reduce_scatter", CollectiveKind::kReduceScatter,
            find_gemm(*rec, at.rec, {}, true), OverlapPattern::kGemmReduceScatter);
      }
      // Backward: gradient all-gather (of the forward reduce-scatter), the input re-gathered
      // for the weight gradient, and the input gradient reduce-scattered.
      const int last_dgrad = find_gemm(bwd, at.bwd, "dgrad", true);
      int first_dgrad = find_gemm(bwd, at.bwd, "dgrad", false);
      int first_wgrad = find_gemm(bwd, at.bwd, "wgrad", false);
      if (first_dgrad == last_dgrad) first_dgrad = first_wgrad = -1;  // one linear: one GEMM each
      add(bwd, Phase::kBackward, "tp_all_gather", CollectiveKind::kAllGather, last_dgrad,
          OverlapPattern::kAllGatherGemm);
      add(bwd, Phase::kBackward, "tp_all_gather", CollectiveKind::kAllGather, first_dgrad,
          OverlapPattern::kAllGatherGemm);
      add(bwd, Phase::kBackward, "tp_reduce_scatter", CollectiveKind::kReduceScatter, first_wgrad,
          OverlapPattern::kGemmReduceScatter);
    } else {
      add(fwd, Phase::kForward, "tp_all_reduce", CollectiveKind::kAllReduce, -1, OverlapPattern::kGemmReduceScatter);
      if (rec) add(*rec, Phase::kRecompute, "tp_all_reduce", CollectiveKind::kAllReduce, -1, OverlapPattern::kGemmReduceScatter);
      add(bwd, Phase::kBackward, "tp_all_reduce", CollectiveKind::kAllReduce, -1, OverlapPattern::kGemmReduceScatter);
    }
  }

  AttentionRecord attention_shape(AttentionPass pass) const {
    AttentionRecord a;
    a.pass = pass;
    a.batch = l_.micro_batch_size;
    a.heads = m_.num_attention_heads / l_.tp;
    a.kv_heads = std::max<std::int64_t>(1, (m_.attention == AttentionKind::kMultiLatent ? m_.num_attention_heads
                                                                                          : m_.num_key_value_heads) / l_.tp);
    if (a.heads % a.kv_heads != 0) a.kv_heads = a.heads;
    a.seq_q = l_.seq_length / l_.cp;
    a.seq_kv = l_.seq_length;
    a.head_dim = m_.head_dim;
    a.causal = true;
    a.dtype = dtype_ == Dtype::kFp8 ? Dtype::kBf16 : dtype_;
    return a;
  }

  bool unfused_attention() const {
    return p_.attention_backend == AttentionBackend::kUnfused || p_.attention_backend == AttentionBackend::kLocal;
  }

  // Attention without a fused kernel (Megatron before FlashAttention): two batched GEMMs over
  // the full s x s score matrix (the causal mask does not save work), and the scaled masked
  // softmax and dropout as memory-bound passes over the scores.
  void unfused_attention_ops(std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd, std::vector<WorkOp>* rec) {
    const AttentionRecord a = attention_shape(AttentionPass::kForward);
    const std::int64_t bh = a.batch * a.heads;
    const double scores = static_cast<double>(bh) * static_cast<double>(a.seq_q) * static_cast<double>(a.seq_kv);
    const bool dropout = p_.attention_dropout.value_or(m_.attention_dropout) > 0;
    // softmax: read and write the scores; dropout: read, write, and a one-byte mask.
    const double forward_bytes = scores * kActivationBytes * 2 + (dropout ? scores * (2 * kActivationBytes + 1) : 0);
    const double qk = 2.0 * scores * static_cast<double>(a.head_dim);
    auto forward = [&](std::vector<WorkOp>& list, Phase phase) {
      list.push_back(gemm(phase, "attention_scores", a.seq_q, a.seq_kv, a.head_dim, bh, qk));
      list.back().dtype = a.dtype;
      list.push_back(memory(phase, "softmax_dropout", forward_bytes));
      list.push_back(gemm(phase, "attention_values", a.seq_q, a.head_dim, a.seq_kv, bh, qk));
      list.back().dtype = a.dtype;
    };
    forward(fwd, Phase::kForward);
    if (rec) forward(*rec, Phase::kRecompute);
    // Backward: two GEMMs per forward GEMM, softmax and dropout gradients over the scores.
    auto backward_gemm = [&](std::string_view name, std::int64_t m, std::int64_t n, std::int64_t k) {
      bwd.push_back(gemm(Phase::kBackward, name, m, n, k, bh, qk));
      bwd.back().dtype = a.dtype;
    };
    backward_gemm("attention_values_grad", a.seq_q, a.seq_kv, a.head_dim);
    backward_gemm("attention_values_grad", a.seq_kv, a.head_dim, a.seq_q);
    bwd.push_back(memory(Phase::kBackward, "softmax_dropout_grad", 1.5 * forward_bytes));
    backward_gemm("attention_scores_grad", a.seq_q, a.head_dim, a.seq_kv);
    backward_gemm("attention_scores_grad", a.seq_kv, a.head_dim, a.seq_q);
  }

  void layer(std::int64_t index, bool full_recompute, std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd) {
    const LayerShapes& unfused = shapes_.layers[static_cast<std::size_t>(index)];
    const std::vector<Linear> linears = fused_linears(unfused);
    std::vector<WorkOp> rec;
    std::vector<WorkOp>* r = full_recompute ? &rec : nullptr;
    const double h = static_cast<double>(m_.hidden_size);
    const double sp = static_cast<double>(sp_tokens_);
    // Attention block.
    BlockStart block{fwd.size(), bwd.size(), rec.size()};
    for (const auto& lin : linears) {
      if (lin.role == Role::kAttention && lin.name != "o_proj") linear(lin, fwd, bwd, r);
    }
    std::size_t attention_index = fwd.size();
    std::size_t attention_bwd_index = bwd.size();
    if (unfused_attention()) {
      unfused_attention_ops(fwd, bwd, r ? &rec : (p_.recompute_granularity == Recompute::kSelective ? &bwd : nullptr));
      attention_index = fwd.size() - 1;
      attention_bwd_index = bwd.size() - 1;
    } else {
      // With context parallelism (Transformer Engine's ring over load-balanced causal chunks)
      // each step is its own kernel: a causal block over the local s/cp tokens, then cp - 1
      // unmasked blocks of s/cp queries over s/2cp keys (or the reverse; the same work).
      struct Block {
        std::int64_t seq_q, seq_kv;
        bool causal;
        std::int64_t count;
      };
      const std::int64_t local = l_.seq_length / l_.cp;
      std::vector<Block> blocks = {{local, l_.cp > 1 ? local : l_.seq_length, true, 1}};
      if (l_.cp > 1) blocks.push_back({local, local / 2, false, l_.cp - 1});
      for (const Block& block : blocks) {
        auto shaped = [&](AttentionPass pass) {
          WorkOp op;
          op.kind = OpKind::kAttention;
          op.phase = pass == AttentionPass::kForward ? Phase::kForward : Phase::kBackward;
          op.name = "attention";
          op.attention = attention_shape(pass);
          op.attention.seq_q = block.seq_q;
          op.attention.seq_kv = block.seq_kv;
          op.attention.causal = block.causal;
          op.flops = attention_pass_flops(op.attention);
          op.count = block.count;
          return op;
        };
        WorkOp attn = shaped(AttentionPass::kForward);
        attention_index = fwd.size();  // the ring's transfers hide behind the last (remote) blocks
        fwd.push_back(attn);
        if (r || p_.recompute_granularity == Recompute::kSelective) {
          WorkOp again = attn;
          again.phase = Phase::kRecompute;
          (r ? rec : bwd).push_back(again);
        }
        attention_bwd_index = bwd.size();
        bwd.push_back(shaped(AttentionPass::kBackward));
      }
    }
    for (const auto& lin : linears) {
      if (lin.name == "o_proj") linear(lin, fwd, bwd, r);
    }
    tp_block_comm(fwd, bwd, r, block);
    if (l_.cp > 1) {
      // Ring attention: K and V of the local chunk travel cp - 1 hops, each hidden behind one
      // attention block when it is long enough; backward moves them and their gradients.
      double kv = 2.0 * l_.micro_batch_size * (l_.seq_length / l_.cp) * attention_shape(AttentionPass::kForward).kv_heads *
                  m_.head_dim * kActivationBytes;
      WorkOp f = collective(Phase::kForward, "cp_ring_kv", Cost::kCpComm, CollectiveKind::kSendRecv, kv, Group::kCp, 2,
                            cp_nodes_ > 1 ? 2 : 1);
      f.count = l_.cp - 1;
      f.overlaps_gemm = static_cast<int>(attention_index);
      fwd.push_back(f);
      WorkOp b = f;
      b.phase = Phase::kBackward;
      b.bytes = 2 * f.bytes;
      b.overlaps_gemm = static_cast<int>(attention_bwd_index);
      bwd.push_back(b);
    }
    // MLP block (dense, or shared + routed experts).
    block = {fwd.size(), bwd.size(), rec.size()};
    bool moe = unfused.moe;
    // The shared experts' up (fc1) and down GEMMs, forward and their data gradients backward:
    // what moe_shared_expert_overlap hides dispatch and combine behind.
    int shared_fwd[2] = {-1, -1}, shared_bwd[2] = {-1, -1};
    for (const auto& lin : linears) {
      if (lin.role == Role::kMlp || lin.role == Role::kSharedExpert || lin.role == Role::kRouter) {
        linear(lin, fwd, bwd, r);
        if (lin.role == Role::kSharedExpert && p_.moe_shared_expert_overlap) {
          const int which = lin.row_parallel() ? 1 : 0;
          shared_fwd[which] = static_cast<int>(fwd.size()) - 1;
          shared_bwd[which] = static_cast<int>(bwd.size()) - 2;  // dgrad, then wgrad
        }
      }
    }
    if (moe) {
      double bytes = sp * topk_ * h * kActivationBytes;
      // Megatron-LM's allgather dispatcher gathers every rank's tokens over the EP group and
      // reduce-scatters the experts' partial outputs (nccl-tests sizes: the gathered buffer);
      // alltoall and flex send each routed copy to its expert's rank.
      const bool allgather = p_.moe_token_dispatcher_type == "allgather";
      for (std::string_view name : {"moe_dispatch", "moe_combine"}) {
        const bool dispatch = name == "moe_dispatch";
        WorkOp a = allgather ? collective(Phase::kForward, name, Cost::kEpComm,
                                          dispatch ? CollectiveKind::kAllGather : CollectiveKind::kReduceScatter,
                                          sp * h * kActivationBytes * static_cast<double>(l_.ep), Group::kEp, l_.ep,
                                          ep_nodes_)
                             : WorkOp{};
        if (!allgather) {
          a.kind = OpKind::kMoeAllToAll;
          a.phase = Phase::kForward;
          a.cost = Cost::kEpComm;
          a.name = name;
          a.bytes = bytes;
          a.group = Group::kEp;
          a.group_ranks = static_cast<int>(l_.ep);
          a.group_nodes = ep_nodes_;
          a.imbalance = expert_rows_;
        }
        a.moe_node = dispatch ? MoeNode::kDispatch : MoeNode::kCombine;
        a.overlaps_gemm = shared_fwd[dispatch ? 0 : 1];  // dispatch with fc1, combine with down
        fwd.push_back(a);
        a.overlaps_gemm = -1;
        if (r) {
          a.phase = Phase::kRecompute;
          rec.push_back(a);
        }
        a.phase = Phase::kBackward;
        a.overlaps_gemm = shared_bwd[dispatch ? 1 : 0];  // backward runs the block in reverse
        bwd.push_back(a);
      }
      if (l_.etp > 1) {
        // Expert tensor parallelism: the tokens a rank received are all-gathered across its
        // ETP group before the expert GEMMs and the partial outputs reduce-scattered after;
        // backward mirrors both. Size: the gathered buffer.
        const double gathered = bytes * static_cast<double>(l_.etp);
        const int etp_nodes = nodes_spanned(l_.etp, 1, gpn_);
        auto add = [&](std::vector<WorkOp>& list, Phase phase) {
          list.push_back(collective(phase, "etp_all_gather", Cost::kEpComm, CollectiveKind::kAllGather, gathered,
                                    Group::kEtp, l_.etp, etp_nodes));
          list.back().moe_node = MoeNode::kDispatch;
          list.push_back(collective(phase, "etp_reduce_scatter", Cost::kEpComm, CollectiveKind::kReduceScatter,
                                    gathered, Group::kEtp, l_.etp, etp_nodes));
          list.back().moe_node = MoeNode::kCombine;
        };
        add(fwd, Phase::kForward);
        if (r) add(rec, Phase::kRecompute);
        add(bwd, Phase::kBackward);
      }
      const BlockStart experts{fwd.size(), bwd.size(), rec.size()};
      for (const auto& lin : linears) {
        if (lin.role == Role::kRoutedExpert) linear(lin, fwd, bwd, r);
      }
      tag_from(experts, MoeNode::kExperts, fwd, bwd, rec);
    }
    if (!moe) tp_block_comm(fwd, bwd, r, block);
    // Elementwise: two norms, two residual adds, the activation, rotary embedding, and (MoE)
    // permutation of the routed tokens.
    double ffn = static_cast<double>(moe ? m_.moe_intermediate_size * topk_ : m_.intermediate_size) /
                 static_cast<double>(moe ? l_.etp : l_.tp);
    // In a MoE layer the activation runs on the routed rows, inside the experts' node: its own
    // kernel (expert_activation).
    const double activation = static_cast<double>(tokens_) * ffn * kActivationBytes * (m_.gated_mlp ? 3 : 2);
    double bytes = sp * h * kActivationBytes * (2 * 2 + 2 * 3) + (moe ? 0.0 : activation) +
                   static_cast<double>(tokens_) * (m_.q_dim() + m_.kv_dim()) / l_.tp * kActivationBytes * 2;
    fwd.push_back(memory(Phase::kForward, "elementwise", bytes));
    if (r) rec.push_back(memory(Phase::kRecompute, "elementwise", bytes));
    bwd.push_back(memory(Phase::kBackward, "elementwise", 2 * bytes));
    if (moe) {
      const BlockStart experts{fwd.size(), bwd.size(), rec.size()};
      fwd.push_back(memory(Phase::kForward, "expert_activation", activation));
      if (r) rec.push_back(memory(Phase::kRecompute, "expert_activation", activation));
      bwd.push_back(memory(Phase::kBackward, "expert_activation", 2 * activation));
      tag_from(experts, MoeNode::kExperts, fwd, bwd, rec);
      moe_memory_ops(fwd, bwd, r);
      // Everything else of the layer (attention, router, shared experts, norms, the
      // permutation) is the attention node's; FSDP collectives belong to no node.
      tag_from({0, 0, 0}, MoeNode::kAttention, fwd, bwd, rec);
    }
    // ZeRO-2 (optim_grads) keeps only its shard of the gradients, so it reduce-scatters the
    // layer's gradients after the layer's backward every micro-batch; ZeRO-3 / FSDP
    // (optim_grads_params) also gathers the layer's parameters before its forward and again
    // before its backward. Prefetching hides them behind compute where it can.
    if (per_microbatch_gradients() && l_.dp * l_.cp > 1) {
      // The layer's dense parameters (expert parameters go over the expert DP group, below).
      const double params = static_cast<double>(layer_parameters(shapes_.layers[static_cast<std::size_t>(index)], l_).dense);
      const std::int64_t ranks = l_.dp * l_.cp;
      if (p_.data_parallel_sharding_strategy == DpSharding::kOptimGradsParams) {
        fwd.push_back(collective(Phase::kForward, "fsdp_param_all_gather", Cost::kDpComm, CollectiveKind::kAllGather,
                                 params * kActivationBytes, Group::kDp, ranks, dp_nodes_));
        bwd.push_back(collective(Phase::kBackward, "fsdp_param_all_gather", Cost::kDpComm, CollectiveKind::kAllGather,
                                 params * kActivationBytes, Group::kDp, ranks, dp_nodes_));
      }
      bwd.push_back(collective(Phase::kBackward, "fsdp_grad_reduce_scatter", Cost::kDpComm,
                               CollectiveKind::kReduceScatter, params * per_parameter_.grads, Group::kDp, ranks, dp_nodes_));
    }
    // Recomputation runs before the layer's backward; its overlap indices move along.
    const std::size_t offset = bwd.size();
    bwd.insert(bwd.end(), rec.begin(), rec.end());
    for (std::size_t i = offset; i < bwd.size(); ++i) {
      if (bwd[i].overlaps_gemm >= 0) bwd[i].overlaps_gemm += static_cast<int>(offset);
    }
  }

  // The router's top-k and softmax over its FP32 logits (read, select, write the scores), and
  // the permutation of the routed token copies into expert order before dispatch and back
  // after combine (read and write each copy): memory-bound kernels, priced by bytes. Backward
  // moves twice the bytes, as the other elementwise kernels.
  void moe_memory_ops(std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd, std::vector<WorkOp>* rec) {
    const double sp = static_cast<double>(sp_tokens_);
    const double router = sp * static_cast<double>(m_.num_experts) * 4 * 3;
    const double permute = sp * static_cast<double>(topk_) * static_cast<double>(m_.hidden_size) * kActivationBytes * 2;
    for (auto [name, bytes] : {std::pair<std::string_view, double>{"moe_router_topk", router},
                               {"moe_permute", permute}, {"moe_unpermute", permute}}) {
      // The unpermutation follows the combine on the communication stream (combine node).
      const MoeNode node = name == "moe_unpermute" ? MoeNode::kCombine : MoeNode::kAttention;
      fwd.push_back(memory(Phase::kForward, name, bytes));
      fwd.back().moe_node = node;
      if (rec) {
        rec->push_back(memory(Phase::kRecompute, name, bytes));
        rec->back().moe_node = node;
      }
      bwd.push_back(memory(Phase::kBackward, name, 2 * bytes));
      bwd.back().moe_node = node;
    }
  }

  // Gives the ops from `from` on that have no node yet (and are not DP collectives) `node`.
  static void tag_from(BlockStart from, MoeNode node, std::vector<WorkOp>& fwd, std::vector<WorkOp>& bwd,
                       std::vector<WorkOp>& rec) {
    for (auto [list, begin] : {std::pair{&fwd, from.fwd}, {&bwd, from.bwd}, {&rec, from.rec}}) {
      for (std::size_t i = begin; i < list->size(); ++i) {
        WorkOp& o = (*list)[i];
        if (o.moe_node == MoeNode::kNone && o.cost != Cost::kDpComm) o.moe_node = node;
      }
    }
  }

  // The SMs the EP all-to-all holds while it runs beside compute. alltoall: NCCL runs it as
  // grouped p2p on p2pnChannels = pow2Up(min(nChannels, NCCL_MAX_P2P_NCHANNELS = 32)) channels,
  // one block (SM) each (ncclTopoComputeP2pChannels, src/graph/paths.cc, and
  // scheduleP2pTasksToPlan, src/enqueue.cc, NCCL v2.30.7-1), nChannels being the cluster's
  // runtime channels of the EP communicator. flex: DeepEP's kernels on moe_deepep_num_sms = 20
  // SMs (Megatron-LM's default, megatron/core/transformer/transformer_config.py at b0cc2706).
  // allgather and plans without EP: none.
  int ep_comm_sms() const {
    if (l_.ep <= 1 || !m_.is_moe()) return 0;
    if (p_.moe_token_dispatcher_type == "flex") return 20;
    if (p_.moe_token_dispatcher_type != "alltoall" || !c_.nccl) return 0;
    const int per_node = static_cast<int>(std::max<std::int64_t>(1, l_.ep / ep_nodes_));
    const NcclGraphSpec spec = nccl_graphs_for_ranks(*c_.nccl, per_node, static_cast<int>(gpn_));
    const int channels = std::min((ep_nodes_ > 1 ? spec.multi_node : spec.single_node).comm_channels, 32);
    int p2p = 1;
    while (p2p < channels) p2p *= 2;
    return p2p;
  }

  // One layer's ops, lowered into empty lists: overlaps_gemm counts from the layer's first op.
  struct LayerOps {
    std::vector<WorkOp> forward, backward;
  };

  // Layers of a stage that lower alike: MoE or dense, fully recomputed or not, how many. Two
  // stages with equal kinds (where their layers start does not matter) lower to the same ops.
  struct LayerKind {
    bool moe, full;
    std::int64_t first_layer, count;
    bool operator==(const LayerKind& o) const { return moe == o.moe && full == o.full && count == o.count; }
  };

  // Layers of one kind lower alike in every stage, so each kind is lowered once per plan.
  const LayerOps& layer_ops(bool moe, bool full_recompute, std::int64_t index) {
    std::optional<LayerOps>& ops = layer_ops_[moe ? 1 : 0][full_recompute ? 1 : 0];
    if (!ops) {
      ops.emplace();
      layer(index, full_recompute, ops->forward, ops->backward);
    }
    return *ops;
  }

  // Appends a layer's ops for `count` identical layers, its overlap indices moved along.
  static void append_counted(const std::vector<WorkOp>& ops, std::int64_t count, std::vector<WorkOp>& into) {
    const std::size_t offset = into.size();
    into.insert(into.end(), ops.begin(), ops.end());
    for (std::size_t i = offset; i < into.size(); ++i) {
      into[i].count *= count;
      if (into[i].overlaps_gemm >= 0) into[i].overlaps_gemm += static_cast<int>(offset);
    }
  }

  StageProgram stage(std::int64_t r) {
    StageProgram s;
    s.pp_rank = r;
    const bool first = r == 0, last = r == l_.pp - 1;
    const double h = static_cast<double>(m_.hidden_size);
    if (first) {
      s.forward.push_back(memory(Phase::kForward, "embedding", static_cast<double>(sp_tokens_) * h * kActivationBytes * 2));
      s.backward.push_back(memory(Phase::kBackward, "embedding_grad", static_cast<double>(sp_tokens_) * h * kActivationBytes * 3));
    }
    // Layers that lower alike (same kind, same recomputation) are lowered once and counted:
    // the stage's op lists stay short however deep the model.
    std::vector<LayerKind> kinds;
    for (const auto& chunk : l_.chunks[static_cast<std::size_t>(r)]) {
      for (std::int64_t i = 0; i < chunk.num_layers; ++i) {
        bool full = p_.recompute_granularity == Recompute::kFull &&
                    (p_.recompute_method == RecomputeMethod::kUniform ||
                     i < p_.recompute_num_layers.value_or(1));
        bool moe = m_.moe_layers.at(static_cast<std::size_t>(chunk.first_layer + i));
        auto it = std::find_if(kinds.begin(), kinds.end(), [&](const LayerKind& k) { return k.moe == moe && k.full == full; });
        if (it == kinds.end()) {
          kinds.push_back({moe, full, chunk.first_layer + i, 1});
        } else {
          ++it->count;
        }
        ++s.layers;
      }
    }
    // A middle stage with the layers of the middle stage before it runs the same program (its
    // ops, parameters and step depend on nothing else): copied, not lowered again.
    const bool middle = !first && !last;
    if (middle && middle_ && middle_->first == kinds) {
      StageProgram copy = middle_->second;
      copy.pp_rank = r;
      return copy;
    }
    for (const auto& k : kinds) {
      const LayerOps& ops = layer_ops(k.moe, k.full, k.first_layer);
      append_counted(ops.forward, k.count, s.forward);
      append_counted(ops.backward, k.count, s.backward);
    }
    if (last) {
      Linear head{"lm_head", Role::kLmHead, m_.hidden_size, m_.vocab_size, false, Sharding::kTensorParallel};
      if (l_.tp > 1 && p_.sequence_parallel) {
        s.forward.push_back(collective(Phase::kForward, "tp_all_gather", Cost::kTpComm, CollectiveKind::kAllGather,
                                       static_cast<double>(tokens_) * h * kActivationBytes, Group::kTp, l_.tp, tp_nodes_));
        s.backward.push_back(collective(Phase::kBackward, "tp_reduce_scatter", Cost::kTpComm,
                                        CollectiveKind::kReduceScatter,
                                        static_cast<double>(tokens_) * h * kActivationBytes, Group::kTp, l_.tp, tp_nodes_));
      }
      linear(head, s.forward, s.backward, nullptr);
      // Softmax cross-entropy over the vocabulary shard, in FP32: Megatron-LM's unfused
      // vocab_parallel_cross_entropy, or its fused kernels with cross_entropy_loss_fusion (each
      // priced by a fit of its own where the profile measured it, memory_kernel).
      double logits = static_cast<double>(tokens_) * static_cast<double>(m_.vocab_size) / l_.tp * 4;
      const bool fused = p_.cross_entropy_loss_fusion;
      s.forward.push_back(memory(Phase::kForward, fused ? "fused_cross_entropy" : "cross_entropy", 2 * logits));
      s.backward.push_back(memory(Phase::kBackward, fused ? "fused_cross_entropy_grad" : "cross_entropy_grad", 2 * logits));
    }
    step_ops(s);
    if (middle) middle_.emplace(std::move(kinds), s);
    return s;
  }

  void step_ops(StageProgram& s) {
    // Parameters this rank holds.
    const std::int64_t r = s.pp_rank;
    const StageParameters held = stage_parameters(shapes_, l_, r);
    const double dense = static_cast<double>(held.dense), expert = static_cast<double>(held.expert);
    const double layer_dense = static_cast<double>(held.layer_dense);
    const double fp8_linear = dtype_ == Dtype::kFp8 ? static_cast<double>(held.fp8_linear) : 0.0;
    s.dense_parameters = dense;
    s.expert_parameters = expert;
    s.parameters = dense + expert;
    const bool sharded = p_.use_distributed_optimizer || p_.data_parallel_sharding_strategy != DpSharding::kNoShard;
    auto sync = [&](double reduced, double gathered, Group group, std::int64_t ranks, int nodes) {
      if (ranks <= 1) return;
      if (reduced > 0) {
        s.step.push_back(collective(Phase::kStep, sharded ? "grad_reduce_scatter" : "grad_all_reduce", Cost::kDpComm,
                                    sharded ? CollectiveKind::kReduceScatter : CollectiveKind::kAllReduce,
                                    reduced * per_parameter_.grads, group, ranks, nodes));
        s.step.back().parameters = reduced;
      }
      if (sharded && gathered > 0) {
        s.step.push_back(collective(Phase::kStep, "param_all_gather", Cost::kDpComm, CollectiveKind::kAllGather,
                                    gathered * kActivationBytes, group, ranks, nodes));
        s.step.back().parameters = gathered;
      }
    };
    // Layer gradients reduced every micro-batch (ZeRO-2/3) and layer parameters gathered per
    // layer (ZeRO-3) are in the layer's op lists; the step handles the rest.
    const bool fsdp = p_.data_parallel_sharding_strategy == DpSharding::kOptimGradsParams;
    sync(per_microbatch_gradients() ? dense - layer_dense : dense, fsdp ? dense - layer_dense : dense, Group::kDp,
         l_.dp * l_.cp, dp_nodes_);
    sync(expert, expert, Group::kExpertDp, l_.expert_dp, expert_dp_nodes_);
    double local = sharded ? dense / static_cast<double>(l_.dp * l_.cp) +
                                 expert / static_cast<double>(std::max<std::int64_t>(1, l_.expert_dp))
                           : dense + expert;
    // Gradient clipping (Megatron-LM's default clip_grad 1.0): one pass over the local
    // gradients for their norm, then the norm's all-reduce over every rank (the workload's
    // grad_norm_all_reduce).
    WorkOp norm = memory(Phase::kStep, "grad_norm", local * per_parameter_.grads);
    norm.cost = Cost::kStepFixed;
    s.step.push_back(norm);
    WorkOp adam = memory(Phase::kStep, "optimizer", local * adam_step_bytes_per_parameter(per_parameter_, !p_.is_16bit()));
    adam.cost = Cost::kOptimizer;
    s.step.push_back(adam);
    // Transformer Engine casts each updated FP8 linear weight to FP8 and its transpose once per
    // step (the first micro-batch; the others reuse them): read 2 bytes, write two 1-byte copies.
    if (fp8_linear > 0) {
      WorkOp cast = memory(Phase::kStep, "fp8_weight_cast_transpose", 4 * fp8_linear);
      cast.cost = Cost::kOptimizer;
      s.step.push_back(cast);
    }
  }

  bool per_microbatch_gradients() const {
    return p_.data_parallel_sharding_strategy == DpSharding::kOptimGrads ||
           p_.data_parallel_sharding_strategy == DpSharding::kOptimGradsParams;
  }

  const ModelSpec& m_;
  const ModelShapes& shapes_;
  const TrainPlan& p_;
  const ParallelLayout& l_;
  const ClusterSpec& c_;
  std::int64_t gpn_;
  Dtype dtype_ = Dtype::kBf16;
  std::int64_t tokens_ = 0, sp_tokens_ = 0;
  int tp_nodes_ = 1, cp_nodes_ = 1, ep_nodes_ = 1, dp_nodes_ = 1, expert_dp_nodes_ = 1;
  std::int64_t topk_ = 0;
  double expert_rows_ = 1;  // the busiest EP rank's routed rows over the balanced share
  BytesPerParameter per_parameter_;  // gradient bytes on the wire, Adam state for the step
  std::optional<LayerOps> layer_ops_[2][2];  // by [moe][full recomputation]
  std::optional<std::pair<std::vector<LayerKind>, StageProgram>> middle_;  // the last middle stage lowered
};

}  // namespace

Workload lower_training(const ModelSpec& model, const ModelShapes& shapes, const TrainPlan& plan,
                        const ParallelLayout& layout, const ClusterSpec& cluster) {
  return Lowering(model, shapes, plan, layout, cluster).lower();
}

Workload lower_training(const ModelSpec& model, const TrainPlan& plan, const ParallelLayout& layout,
                        const ClusterSpec& cluster) {
  return lower_training(model, model_shapes(model), plan, layout, cluster);
}

}  // namespace clustersim
