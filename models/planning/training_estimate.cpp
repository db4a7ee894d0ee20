#include "models/planning/training_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string_view>

#include "models/cost/fleet_variability.hpp"
#include "models/lowering/gradient_buckets.hpp"
#include "models/planning/ecmp_send_factor.hpp"
#include "models/planning/iteration_graph.hpp"
#include "models/planning/moe_overlap_schedule.hpp"
#include "models/planning/step_attribution.hpp"

namespace clustersim {

namespace {

struct Tally {
  int priced = 0, extrapolated = 0, roofline = 0;
  void count(const PricedOp& p) {
    ++priced;
    extrapolated += p.extrapolated ? 1 : 0;
    roofline += p.roofline_default ? 1 : 0;
  }
  // What was counted after `before`.
  Tally since(const Tally& before) const {
    return {priced - before.priced, extrapolated - before.extrapolated, roofline - before.roofline};
  }
  void add(const Tally& other) {
    priced += other.priced;
    extrapolated += other.extrapolated;
    roofline += other.roofline;
  }
};

class Pricer {
 public:
  // `attention_ratio`: attention kernels cost this share of their full causal price (packed
  // documents under reset_attention_mask; 1 otherwise).
  Pricer(const CostModel& costs, Tally& tally, PriceCache* cache, double attention_ratio = 1.0)
      : costs_(costs), tally_(tally), cache_(cache), attention_ratio_(attention_ratio) {}

  double op(const WorkOp& o) {
    const double scale = static_cast<double>(o.count) * (o.kind == OpKind::kAttention ? attention_ratio_ : 1.0);
    if (cache_) {
      if (const PricedOp* hit = cache_->find(o)) {
        tally_.count(*hit);
        return hit->seconds * scale;
      }
    }
    PricedOp p = price_op(o, costs_);
    tally_.count(p);
    if (cache_) cache_->insert(o, p);
    return p.seconds * scale;
  }

  PricedOp overlapped(OverlapPattern pattern, double gemm_s, double comm_s) {
    PricedOp p = costs_.overlapped(pattern, gemm_s, comm_s);
    tally_.count(p);
    return p;
  }

 private:
  const CostModel& costs_;
  Tally& tally_;
  PriceCache* cache_;
  double attention_ratio_;
};

// Sums one phase list of a stage into `t`: compute, and communication exposed after overlap.
// `added`, when given, receives what each op added to the total (0 for DP collectives, whose
// exposure is the list's).
double price_list(const std::vector<WorkOp>& ops, Pricer& pricer, StageTimes& t, std::vector<double>* added = nullptr) {
  std::vector<double> seconds(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) seconds[i] = pricer.op(ops[i]);
  if (added) added->assign(ops.size(), 0.0);
  double total = 0, dp_s = 0;
  const double compute_before = t.compute_s;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const WorkOp& o = ops[i];
    double s = seconds[i];
    if (o.cost == Cost::kCompute) {
      t.compute_s += s;
      if (o.kind == OpKind::kAttention) t.attention_s += s;
    } else if (o.cost == Cost::kTpComm) {
      if (o.overlaps_gemm >= 0) {
        double g = seconds[static_cast<std::size_t>(o.overlaps_gemm)];
        s = pricer.overlapped(o.overlap_pattern, g, s).seconds - g;
      }
      t.tp_comm_s += s;
    } else if (o.cost == Cost::kCpComm || o.cost == Cost::kEpComm) {
      // Exposed only beyond the kernel it runs beside: a ring-attention transfer behind the
      // attention block it feeds, an all-to-all behind the shared experts' GEMM
      // (moe_shared_expert_overlap).
      if (o.overlaps_gemm >= 0) s = std::max(0.0, s - seconds[static_cast<std::size_t>(o.overlaps_gemm)]);
      (o.cost == Cost::kCpComm ? t.cp_comm_s : t.ep_comm_s) += s;
    } else if (o.cost == Cost::kDpComm) {
      dp_s += s;  // FSDP gathers and reductions: exposed only beyond the compute they prefetch behind
      continue;
    }
    if (added) (*added)[i] = s;
    total += s;
  }
  double exposed_dp = std::max(0.0, dp_s - (t.compute_s - compute_before));
  t.dp_in_microbatch_s += exposed_dp;
  return total + exposed_dp;
}

// A pass's MoE-layer ops summed by the node of Megatron-LM's layer schedule they run in, per
// MoE layer; `layers` receives the number of MoE layers (the dispatches counted).
MoeLayerNodes moe_layer_nodes(const std::vector<WorkOp>& ops, const std::vector<double>& added, double& layers) {
  MoeLayerNodes n;
  layers = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const WorkOp& o = ops[i];
    const double s = added[i];
    const bool comm = o.cost == Cost::kEpComm;
    const bool wgrad = o.kind == OpKind::kGemm && o.name == "wgrad";
    switch (o.moe_node) {
      case MoeNode::kNone: break;
      case MoeNode::kAttention: (wgrad ? n.attention_wgrad_s : n.attention_s) += s; break;
      case MoeNode::kExperts: (wgrad ? n.experts_wgrad_s : n.experts_s) += s; break;
      case MoeNode::kDispatch:
        (comm ? n.dispatch_comm_s : n.dispatch_compute_s) += s;
        if (o.name == "moe_dispatch") layers += static_cast<double>(o.count);
        break;
      case MoeNode::kCombine: (comm ? n.combine_comm_s : n.combine_compute_s) += s; break;
    }
  }
  if (layers > 0) {
    for (double* x : {&n.attention_s, &n.attention_wgrad_s, &n.experts_s, &n.experts_wgrad_s, &n.dispatch_comm_s,
                      &n.dispatch_compute_s, &n.combine_comm_s, &n.combine_compute_s}) {
      *x /= layers;
    }
  }
  return n;
}

// One micro-batch's forward and backward on a stage, communication exposed after overlap;
// with the EP overlap, what the combined schedule hides of each pass when it runs paired.
struct MicroBatchPasses {
  StageTimes t;
  double hidden_forward_s = 0, hidden_backward_s = 0;
};

// Megatron-LM's combined 1F1B schedule runs one micro-batch's forward of a model chunk beside
// another's backward, layer by layer (moe_overlap_schedule.hpp): what it saves over running
// them one after the other is the EP communication it hides, less the compute the all-to-all's
// SMs slow; split between the passes by their EP communication.
MicroBatchPasses micro_batch_passes(const Workload& w, const StageProgram& s, Pricer& pricer,
                                    std::int64_t sm_count) {
  MicroBatchPasses out;
  StageTimes& t = out.t;
  const bool overlap = w.overlap_moe_expert_parallel_comm;
  std::vector<double> forward_added, backward_added;
  t.forward_s = price_list(s.forward, pricer, t, overlap ? &forward_added : nullptr);
  t.backward_s = price_list(s.backward, pricer, t, overlap ? &backward_added : nullptr);
  if (!overlap) return out;
  double layers = 0, backward_layers = 0;
  CombinedChunk chunk;
  chunk.forward = moe_layer_nodes(s.forward, forward_added, layers);
  chunk.backward = moe_layer_nodes(s.backward, backward_added, backward_layers);
  if (layers <= 0) return out;
  const double per_chunk = std::max(1.0, std::round(layers / static_cast<double>(std::max<std::int64_t>(1, w.layout.virtual_stages))));
  chunk.layers = static_cast<std::int64_t>(per_chunk);
  chunk.delay_wgrad_compute = w.delay_wgrad_compute;
  chunk.comm_sms = w.ep_comm_sms;
  chunk.sm_count = sm_count;
  const double serial_s = layers * (chunk.forward.total_s() + chunk.backward.total_s());
  const double paired_s = combined_chunk_s(chunk) * layers / per_chunk;
  const double hidden = std::max(0.0, serial_s - paired_s);
  const double comm_f = chunk.forward.comm_s(), comm_b = chunk.backward.comm_s();
  const double forward_share = comm_f + comm_b > 0 ? comm_f / (comm_f + comm_b) : 0.5;
  out.hidden_forward_s = hidden * forward_share;
  out.hidden_backward_s = hidden - out.hidden_forward_s;
  t.forward_s -= out.hidden_forward_s;
  t.backward_s -= out.hidden_backward_s;
  t.ep_comm_s = std::max(0.0, t.ep_comm_s - hidden);
  return out;
}

}  // namespace

namespace {

// The memory-bound kernel with a fit of its own that prices `o`, as an index into
// kOwnFitMemoryKernels (-1: the generic fit): Transformer Engine's cast-transpose of an FP8
// linear's input (forward) or output gradient (backward) — the once-per-step weight cast runs
// TE's multi-tensor kernel and is not one — and the cross-entropy kernels, named as the
// lowering names them. The price and the price cache's key both take it from here.
int memory_kernel_index(const WorkOp& o) {
  if (o.kind != OpKind::kMemoryBound) return -1;
  return own_fit_memory_kernel(o.name == "fp8_cast_transpose" ? kCastTranspose : o.name);
}

// Its name, or "" for the generic fit.
std::string_view memory_kernel(const WorkOp& o) {
  const int own = memory_kernel_index(o);
  return own >= 0 ? kOwnFitMemoryKernels[static_cast<std::size_t>(own)] : std::string_view();
}

}  // namespace

PricedOp price_op(const WorkOp& o, const CostModel& costs) {
  switch (o.kind) {
    case OpKind::kGemm: return costs.gemm(o.gemm, o.dtype, o.grouped);
    case OpKind::kAttention: return costs.attention(o.attention);
    case OpKind::kMemoryBound: return costs.memory_bound(o.bytes, memory_kernel(o));
    case OpKind::kCollective: return costs.collective(o.collective, o.bytes, o.group_ranks, o.group_nodes);
    case OpKind::kMoeAllToAll:
      return costs.moe_all_to_all(o.name == "moe_dispatch" ? MoePhase::kDispatch : MoePhase::kCombine, o.bytes,
                                  o.imbalance, o.group_ranks, o.group_nodes);
  }
  return {};
}

PriceCache::Key PriceCache::key_of(const WorkOp& o) {
  const AttentionRecord& a = o.attention;
  const int kernel = memory_kernel_index(o);
  return {static_cast<double>(o.kind),
          static_cast<double>(o.gemm.m), static_cast<double>(o.gemm.n), static_cast<double>(o.gemm.k),
          static_cast<double>(o.gemm.batch), static_cast<double>(o.dtype) + (o.grouped ? 100 : 0),
          static_cast<double>(a.pass), static_cast<double>(a.batch * 1000003 + a.heads), static_cast<double>(a.kv_heads),
          static_cast<double>(a.seq_q * 1000003 + a.seq_kv), static_cast<double>(a.head_dim * 2 + (a.causal ? 1 : 0)),
          o.bytes,
          static_cast<double>(o.collective) + (o.name == "moe_combine" ? 100 : 0) + (kernel < 0 ? 0 : 200 + 10 * kernel),
          static_cast<double>(o.group_ranks), static_cast<double>(o.group_nodes), o.imbalance};
}

std::size_t PriceCache::KeyHash::operator()(const Key& k) const {
  std::size_t h = 1469598103934665603ull;
  for (double v : k) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

const PricedOp* PriceCache::find(const WorkOp& op) const {
  auto it = prices_.find(key_of(op));
  return it == prices_.end() ? nullptr : &it->second;
}

void PriceCache::insert(const WorkOp& op, const PricedOp& price) { prices_.emplace(key_of(op), price); }

double pipeline_bubble_fraction(std::int64_t stages, std::int64_t microbatches, std::int64_t virtual_stages) {
  double p = static_cast<double>(stages), m = static_cast<double>(microbatches), v = static_cast<double>(virtual_stages);
  return (p - 1) / (v * m + p - 1);
}

std::size_t bottleneck_stage(const TrainingEstimate& e) {
  std::size_t bottleneck = 0;
  for (std::size_t r = 1; r < e.stages.size(); ++r) {
    if (e.stages[r].forward_s + e.stages[r].backward_s >
        e.stages[bottleneck].forward_s + e.stages[bottleneck].backward_s) {
      bottleneck = r;
    }
  }
  return bottleneck;
}

TrainingEstimate price_training_stages(const Workload& w, const CostModel& costs, PriceCache* cache) {
  TrainingEstimate e;
  Tally tally;
  PriceCache local;
  // A cache is shared across plans: it holds full causal prices, the ratio applies after it.
  Pricer pricer(costs, tally, cache ? cache : &local, w.packed_attention.mean);
  const ParallelLayout& l = w.layout;

  // The middle stages of a pipeline run the same ops, so a stage whose ops equal the previous
  // stage's takes its prices and counts what pricing it counted: its micro-batch passes alone,
  // or the whole stage.
  MicroBatchPasses passes;
  Tally passes_tally, stage_tally;
  for (std::size_t r = 0; r < w.stages.size(); ++r) {
    const StageProgram& s = w.stages[r];
    const bool same_passes = r > 0 && s.forward == w.stages[r - 1].forward && s.backward == w.stages[r - 1].backward;
    if (same_passes && r > 1 && s.step == w.stages[r - 1].step) {
      e.stages.push_back(e.stages.back());
      tally.add(stage_tally);
      continue;
    }
    const Tally before = tally;
    if (same_passes) {
      tally.add(passes_tally);
    } else {
      passes = micro_batch_passes(w, s, pricer, w.gpu_sm_count);
      passes_tally = tally.since(before);
    }
    StageTimes t = passes.t;
    if (w.overlap_moe_expert_parallel_comm) {
      // The warmup forwards and cooldown backwards run alone: nothing hidden in them.
      const double alone = 1.0 - combined_paired_share(l.pp, s.pp_rank, l.virtual_stages, l.num_microbatches);
      t.forward_s += passes.hidden_forward_s * alone;
      t.backward_s += passes.hidden_backward_s * alone;
      t.ep_comm_s += (passes.hidden_forward_s + passes.hidden_backward_s) * alone;
    }
    if (w.grad_norm_all_reduce.group_ranks > 1) t.step_fixed_s += pricer.op(w.grad_norm_all_reduce);
    for (const auto& o : s.step) {
      if (o.cost == Cost::kOptimizer) t.optimizer_s += pricer.op(o);
      if (o.cost == Cost::kStepFixed) t.step_fixed_s += pricer.op(o);
      if (o.cost == Cost::kDpComm) tally.count(costs.collective(o.collective, o.bytes, o.group_ranks, o.group_nodes));
    }
    e.stages.push_back(t);
    stage_tally = tally.since(before);
  }
  if (l.pp > 1) tally.count(costs.collective(CollectiveKind::kSendRecv, w.p2p_bytes, 2, w.p2p_crosses_nodes ? 2 : 1));
  if (w.documents) {
    // The bottleneck stage's attention share of a micro-batch: how much r's spread moves it.
    const auto worst = std::max_element(e.stages.begin(), e.stages.end(), [](const StageTimes& a, const StageTimes& b) {
      return a.forward_s + a.backward_s < b.forward_s + b.backward_s;
    });
    const double pass = worst->forward_s + worst->backward_s;
    e.document_attention_share = pass > 0 ? worst->attention_s / pass : 0.0;
  }
  e.priced_ops = tally.priced;
  e.extrapolated_ops = tally.extrapolated;
  e.roofline_ops = tally.roofline;
  return e;
}

namespace {

// What the fleet does to every forward and backward (expected maxima, fleet_variability.hpp):
// the job runs at its slowest host's pace and each TP/CP group's compute at its slowest GPU's
// (variability); the DP collectives wait for the replica whose micro-batches cost most
// (imbalance). Both >= 1.
struct FleetFactors {
  double variability = 1.0, imbalance = 1.0;
};

// The data imbalance comes from the plan's packed documents when it gives them (the spread of a
// micro-batch's cost, document_cv), else from the fleet's measured cv.
FleetFactors fleet_factors(const ClusterSpec& cluster, const ParallelLayout& l, const Mechanisms& mechanisms,
                           double document_cv) {
  FleetFactors f;
  const FleetSpec& fleet = cluster.fleet;
  if (mechanisms.data_imbalance && document_cv > 0) {
    f.imbalance = 1.0 + document_cv * expected_max_standard_normal(l.dp) /
                            std::sqrt(static_cast<double>(std::max<std::int64_t>(1, l.num_microbatches)));
  } else if (mechanisms.data_imbalance && fleet.enabled()) {
    f.imbalance = expected_slowest_replica_data_factor(fleet, l.dp, l.num_microbatches);
  }
  if (!fleet.enabled()) return f;
  const std::int64_t gpn = std::max<std::int64_t>(1, cluster.node.gpus_per_node);
  if (mechanisms.variability) {
    f.variability = expected_slowest_host_factor(fleet, (l.world + gpn - 1) / gpn) *
                    expected_group_jitter_factor(fleet, l.tp * l.cp);
  }
  return f;
}

double document_cv(const TrainingEstimate& e, const Workload& w) {
  return w.documents ? e.document_attention_share * w.packed_attention.cv : 0.0;
}

}  // namespace

namespace {

// One DP collective of a stage's step op over `bytes`, as the iteration graph prices it.
double dp_collective_s(const WorkOp& op, double bytes, const CostModel& costs) {
  if (op.group_ranks < 2) return 0.0;
  return costs.collective(op.collective, bytes, op.group_ranks, op.group_nodes).seconds * static_cast<double>(op.count);
}

bool is_gather(const WorkOp& op) { return op.cost == Cost::kDpComm && op.collective == CollectiveKind::kAllGather; }
bool is_reduction(const WorkOp& op) { return op.cost == Cost::kDpComm && op.collective != CollectiveKind::kAllGather; }

// The stage's parameter gathers of model chunk `chunk` (share `share` of the stage's), one after
// another on its DP lane.
double gather_s(const StageProgram& stage, double share, const CostModel& costs) {
  double seconds = 0;
  for (const WorkOp& op : stage.step) {
    if (is_gather(op)) seconds += dp_collective_s(op, op.bytes * share, costs);
  }
  return seconds;
}

// How long after the stage's last backward (of `backward_s`) begins its last gradient bucket is
// reduced at the earliest: the buckets of its last reduction that this backward makes ready, on
// a DP lane with nothing else to do (iteration_graph.cpp, Builder::step).
double last_reduction_end_s(const Workload& w, std::size_t s, double backward_s, const CostModel& costs) {
  const ParallelLayout& l = w.layout;
  const StageProgram& stage = w.stages[s];
  const auto last = std::find_if(stage.step.rbegin(), stage.step.rend(), is_reduction);
  if (last == stage.step.rend() || last->group_ranks < 2) return 0.0;
  const WorkOp& op = *last;
  const double v = static_cast<double>(l.virtual_stages);
  const bool chunked = w.overlap_grad_reduce && l.virtual_stages > 1;
  const double share = chunked ? pipeline_chunk_share(l, static_cast<std::int64_t>(s), 0) : 1.0;
  const double bucket_parameters = s == 0 ? w.grad_bucket_parameters : w.overlap_grad_reduce ? op.parameters / v : 0;
  std::vector<Bucket> buckets = split_into_buckets(BucketUse::kReduction, op.parameters * share, op.bytes * share, bucket_parameters,
                                                   [&](double bytes) { return dp_collective_s(op, bytes, costs); });
  if (!w.overlap_grad_reduce) {
    for (Bucket& b : buckets) b.at = 1.0;  // all wait for the whole backward
  }
  return backward_s + reduction_overrun_s(std::move(buckets), backward_s);
}

}  // namespace

double step_time_lower_bound(const TrainingEstimate& priced, const Workload& w, const CostModel& costs,
                             const ClusterSpec& cluster, const Mechanisms& mechanisms) {
  const ParallelLayout& l = w.layout;
  const FleetFactors fleet = fleet_factors(cluster, l, mechanisms, document_cv(priced, w));
  const double compute = fleet.variability * fleet.imbalance;
  const double load_s = mechanisms.fixed_costs && cluster.fleet.enabled() ? cluster.fleet.data_loading_s : 0.0;
  const double m = static_cast<double>(l.num_microbatches), v = static_cast<double>(l.virtual_stages);
  const double p2p_s =
      l.pp > 1 ? costs.collective(CollectiveKind::kSendRecv, w.p2p_bytes, 2, w.p2p_crosses_nodes ? 2 : 1).seconds : 0.0;
  const bool blocking = l.virtual_stages == 1 || !w.overlap_p2p_comm;
  // Stage s's compute lane cannot start before the first micro-batch's first chunk has passed
  // the stages before it (nor, on the first and last stage, before the batch is loaded) and runs
  // all its own work in a row, blocking sends included; with overlapped parameter gathers the
  // lane waits after its first forward for its first chunk's gather (and so does a blocking
  // send of that forward to the next stage). After that lane: its last gradient
  // bucket is reduced (it cannot start before the last backward ends), then it clips and steps,
  // and without overlap gathers its parameters; and its last backward still has to pass back
  // through the stages before it, after which stage 0 clips and steps. No schedule of these
  // prices is faster.
  const auto& stages = priced.stages;
  auto fixed_s = [&](const StageTimes& t) { return mechanisms.fixed_costs ? t.step_fixed_s : 0.0; };
  const double stage0_tail = stages.empty() ? 0.0 : fixed_s(stages[0]) + stages[0].optimizer_s;
  double bound = 0, arrival = 0, way_back = 0;
  double first_gather = 0, gather_after = 0, reduction_after = 0;  // the stage's DP collectives
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const StageTimes& t = stages[s];
    const bool last = s + 1 == stages.size(), first = s == 0;
    double sends = 0;
    if (blocking && l.pp > 1) sends = (v * m - (last ? m : 0)) + (v * m - (first ? m : 0));
    const double own = compute * m * (t.forward_s + t.backward_s) + sends * p2p_s;
    const double first_chunk = pipeline_chunk_share(l, static_cast<std::int64_t>(s), 0);
    const StageProgram& stage = w.stages[s];
    // The stage's DP collectives, priced again only when its step ops differ from the stage
    // before's (the middle stages of a pipeline share them; stage 0 has its own buckets).
    const bool same_step = s > 1 && stage.step == w.stages[s - 1].step &&
                           first_chunk == pipeline_chunk_share(l, static_cast<std::int64_t>(s - 1), 0);
    if (!same_step) {
      first_gather = w.overlap_param_gather ? gather_s(stage, l.virtual_stages > 1 ? first_chunk : 1.0, costs) : 0.0;
      gather_after = w.overlap_param_gather ? 0.0 : gather_s(stage, 1.0, costs);
      reduction_after = last_reduction_end_s(w, s, t.backward_s * first_chunk, costs);
    }
    // The first forward, then (overlapped gathers) the wait for its chunk's parameters.
    const double first_forward_s = compute * t.forward_s * first_chunk;
    const double first_forward_end = std::max(std::max(arrival, first || last ? load_s : 0.0) + first_forward_s, first_gather);
    const double lane_end = first_forward_end + own - first_forward_s;
    // The last backward (chunk 0's last micro-batch), then (blocking, not on stage 0) its send.
    const double last_backward_s = t.backward_s * first_chunk;
    const double send_after = blocking && l.pp > 1 && !first ? p2p_s : 0.0;
    const double reduced = lane_end - send_after - compute * last_backward_s + reduction_after;
    bound = std::max(bound, std::max(lane_end, reduced) + fixed_s(t) + t.optimizer_s + gather_after);
    // The way back: the send already in this lane's work, then the backward of every earlier stage.
    if (!first) bound = std::max(bound, lane_end + way_back - (send_after > 0 ? p2p_s : 0.0) + stage0_tail);
    // A blocking send leaves after the wait for the gather, an overlapped one after the forward.
    arrival = (blocking ? first_forward_end : std::max(arrival, first || last ? load_s : 0.0) + first_forward_s) + p2p_s;
    way_back += compute * first_chunk * t.backward_s + p2p_s;
  }
  return bound;
}

std::vector<StageTimes> scheduled_stage_times(const std::vector<StageTimes>& stages, const Mechanisms& mechanisms) {
  std::vector<StageTimes> out = stages;
  if (!mechanisms.fixed_costs) {
    for (StageTimes& t : out) t.step_fixed_s = 0;
  }
  return out;
}

void schedule_training(TrainingEstimate& e, const Workload& w, const CostModel& costs, const ClusterSpec& cluster,
                       const MemoryEstimate& memory, const Mechanisms& mechanisms, bool breakdown) {
  const ParallelLayout& l = w.layout;
  // The iteration as the pipeline schedule runs it, each activity at its price: the step ends
  // when the last stage has synchronised its gradients and stepped (iteration_graph.hpp).
  const FleetSpec& fleet = cluster.fleet;
  const std::vector<StageTimes> stages = scheduled_stage_times(e.stages, mechanisms);
  const IterationGraph graph =
      build_iteration_graph(w, stages, costs, 1, mechanisms.fixed_costs ? fleet.data_loading_s : 0.0);
  const auto [variability, imbalance] = fleet_factors(cluster, l, mechanisms, document_cv(e, w));
  const double fleet_factor = variability * imbalance;
  const double send_factor = mechanisms.ecmp ? expected_ecmp_send_factor(l, cluster) : 1.0;
  // The stretch a fleet factor adds, split between its causes by their share of its logarithm.
  const double imbalance_share = fleet_factor > 1.0 ? std::log(imbalance) / std::log(fleet_factor) : 0.0;
  std::vector<double> seconds;
  if (fleet_factor != 1.0 || send_factor != 1.0) {
    seconds.resize(graph.activities.size());
    for (std::size_t i = 0; i < seconds.size(); ++i) {
      const IterationActivity& a = graph.activities[i];
      const bool compute = a.kind == IterationActivityKind::kForward || a.kind == IterationActivityKind::kBackward;
      seconds[i] = a.nominal_s * (compute ? fleet_factor : a.kind == IterationActivityKind::kSend ? send_factor : 1.0);
    }
  }
  // Shared NICs and interference: one pass each over this timeline, then the timeline again
  // with both stretches.
  std::vector<ActivitySpan> spans = evaluate_iteration(graph, seconds);
  std::vector<double> interference;
  if (mechanisms.shared_nics || mechanisms.interference) {
    auto any = [](const std::vector<double>& v) { return std::any_of(v.begin(), v.end(), [](double x) { return x > 0; }); };
    std::vector<double> shared;
    if (mechanisms.shared_nics) shared = shared_nic_extra_s(graph, spans);
    if (mechanisms.interference) interference = interference_extra_s(graph, spans, cluster.gpu.sm_count);
    if (!any(interference)) interference.clear();
    if (!interference.empty() || any(shared)) {
      if (seconds.empty()) {
        seconds.resize(graph.activities.size());
        for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] = graph.activities[i].nominal_s;
      }
      for (std::size_t i = 0; i < seconds.size(); ++i) {
        seconds[i] += (shared.empty() ? 0.0 : shared[i]) + (interference.empty() ? 0.0 : interference[i]);
      }
      spans = evaluate_iteration(graph, seconds);
    }
  }
  e.step_time_s = spans[static_cast<std::size_t>(graph.end)].end_s;
  if (breakdown) {
  const StepAttribution attribution =
      attribute_step(graph, spans, stages, [&](std::int32_t i, double extra, bool, std::vector<PathSegment>& out) {
        const IterationActivity& a = graph.activities[static_cast<std::size_t>(i)];
        const bool compute = a.kind == IterationActivityKind::kForward || a.kind == IterationActivityKind::kBackward;
        if (!compute) {
          if (a.kind == IterationActivityKind::kSend && send_factor > 1.0) {
            // The part of the transfer's time ECMP added, then any NIC sharing on top.
            const double ecmp = std::min(extra, a.nominal_s * (send_factor - 1.0));
            out.push_back({"contention", "ECMP collisions (expected)", ecmp});
            if (extra > ecmp) out.push_back({"contention", "shared NIC (expected)", extra - ecmp});
            return;
          }
          out.push_back({"contention", "shared NIC (expected)", extra});
          return;
        }
        if (!interference.empty() && interference[static_cast<std::size_t>(i)] > 0) {
          const double slowed = std::min(extra, interference[static_cast<std::size_t>(i)]);
          out.push_back({"interference", "SMs held by overlapped DP collectives", slowed});
          extra -= slowed;
        }
        // Only the fleet's factor stretches compute beyond interference: without one, what is
        // left is rounding.
        if (extra <= 0 || fleet_factor == 1.0) return;
        if (imbalance_share < 1.0) out.push_back({"variability", "fleet " + fleet.name + " (expected)", extra * (1 - imbalance_share)});
        if (imbalance_share > 0.0) {
          out.push_back({"imbalance", w.documents ? "packed document lengths (expected)" : "micro-batch data (expected)",
                         extra * imbalance_share});
        }
      });
  e.breakdown = attribution.breakdown;
  }

  const double world = static_cast<double>(l.world);
  e.tokens_per_s = w.tokens_per_step / e.step_time_s;
  e.tokens_per_s_per_gpu = e.tokens_per_s / world;
  e.tflops_per_gpu = w.model_flops_per_step / e.step_time_s / world / 1e12;
  auto peak = cluster.gpu.peak_flops_per_s(Dtype::kBf16);
  if (!peak) peak = cluster.gpu.peak_flops_per_s(Dtype::kFp16);
  e.mfu = w.model_flops_per_step / e.step_time_s / world / *peak;
  e.hfu = w.hardware_flops_per_step / e.step_time_s / world / *peak;
  e.memory_per_gpu_bytes = memory.peak().bytes.total();
  e.fits_in_memory = e.memory_per_gpu_bytes <= static_cast<double>(cluster.gpu.hbm_bytes);
}

TrainingEstimate estimate_training(const Workload& w, const CostModel& costs, const ClusterSpec& cluster,
                                   const MemoryEstimate& memory, PriceCache* cache, const Mechanisms& mechanisms) {
  TrainingEstimate e = price_training_stages(w, costs, cache);
  schedule_training(e, w, costs, cluster, memory, mechanisms);
  return e;
}

}  // namespace clustersim
