#include "models/planning/training_estimate.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "models/lowering/gradient_buckets.hpp"

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
  Pricer(const CostModel& costs, Tally& tally, PriceCache* cache) : costs_(costs), tally_(tally), cache_(cache) {}

  double op(const WorkOp& o) {
    if (cache_) {
      if (const PricedOp* hit = cache_->find(o)) {
        tally_.count(*hit);
        return hit->seconds * static_cast<double>(o.count);
      }
    }
    PricedOp p = price_op(o, costs_);
    tally_.count(p);
    if (cache_) cache_->insert(o, p);
    return p.seconds * static_cast<double>(o.count);
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
};

// Sums one phase list of a stage into `t`: compute, and communication exposed after overlap.
double price_list(const std::vector<WorkOp>& ops, Pricer& pricer, StageTimes& t) {
  std::vector<double> seconds(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) seconds[i] = pricer.op(ops[i]);
  double total = 0, dp_s = 0;
  const double compute_before = t.compute_s;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const WorkOp& o = ops[i];
    double s = seconds[i];
    if (o.cost == Cost::kCompute) {
      t.compute_s += s;
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
    total += s;
  }
  double exposed_dp = std::max(0.0, dp_s - (t.compute_s - compute_before));
  t.dp_in_microbatch_s += exposed_dp;
  return total + exposed_dp;
}

// Megatron-LM's combined 1F1B schedule runs one micro-batch's forward beside another's
// backward: each pass's exposed EP communication hides behind the other pass's compute.
// (The first forward and the last backward of a stage have no partner; not counted.)
void hide_ep_behind_the_other_pass(StageTimes& t, double forward_ep_s, double forward_compute_s) {
  const double backward_ep_s = t.ep_comm_s - forward_ep_s;
  const double backward_compute_s = t.compute_s - forward_compute_s;
  const double forward_left = std::max(0.0, forward_ep_s - backward_compute_s);
  const double backward_left = std::max(0.0, backward_ep_s - forward_compute_s);
  t.forward_s -= forward_ep_s - forward_left;
  t.backward_s -= backward_ep_s - backward_left;
  t.ep_comm_s = forward_left + backward_left;
}

// One micro-batch's forward and backward on a stage, communication exposed after overlap.
StageTimes micro_batch_passes(const StageProgram& s, Pricer& pricer, bool overlap_moe_expert_parallel_comm) {
  StageTimes t;
  t.forward_s = price_list(s.forward, pricer, t);
  const double forward_ep_s = t.ep_comm_s, forward_compute_s = t.compute_s;
  t.backward_s = price_list(s.backward, pricer, t);
  if (overlap_moe_expert_parallel_comm) hide_ep_behind_the_other_pass(t, forward_ep_s, forward_compute_s);
  return t;
}

}  // namespace

PricedOp price_op(const WorkOp& o, const CostModel& costs) {
  switch (o.kind) {
    case OpKind::kGemm: return costs.gemm(o.gemm, o.dtype);
    case OpKind::kAttention: return costs.attention(o.attention);
    case OpKind::kMemoryBound: return costs.memory_bound(o.bytes);
    case OpKind::kCollective: return costs.collective(o.collective, o.bytes, o.group_ranks, o.group_nodes);
    case OpKind::kMoeAllToAll:
      return costs.moe_all_to_all(o.name == "moe_dispatch" ? MoePhase::kDispatch : MoePhase::kCombine, o.bytes,
                                  o.imbalance, o.group_ranks);
  }
  return {};
}

PriceCache::Key PriceCache::key_of(const WorkOp& o) {
  const AttentionRecord& a = o.attention;
  return {static_cast<double>(o.kind),
          static_cast<double>(o.gemm.m), static_cast<double>(o.gemm.n), static_cast<double>(o.gemm.k),
          static_cast<double>(o.gemm.batch), static_cast<double>(o.dtype),
          static_cast<double>(a.pass), static_cast<double>(a.batch * 1000003 + a.heads), static_cast<double>(a.kv_heads),
          static_cast<double>(a.seq_q * 1000003 + a.seq_kv), static_cast<double>(a.head_dim * 2 + (a.causal ? 1 : 0)),
          o.bytes, static_cast<double>(o.collective) + (o.name == "moe_combine" ? 100 : 0),
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

TrainingEstimate estimate_training(const Workload& w, const CostModel& costs, const ClusterSpec& cluster,
                                   const MemoryEstimate& memory, PriceCache* cache) {
  TrainingEstimate e;
  Tally tally;
  PriceCache local;
  Pricer pricer(costs, tally, cache ? cache : &local);
  const ParallelLayout& l = w.layout;
  const double m = static_cast<double>(l.num_microbatches);
  const double p = static_cast<double>(l.pp);
  const double v = static_cast<double>(l.virtual_stages);

  // Data-parallel step collectives as Megatron-LM issues them: in buckets on the first
  // pipeline stage, one per model chunk on the others (docs/estimate.md, "Step tail").
  std::vector<std::vector<Bucket>> reductions(w.stages.size()), gathers(w.stages.size());
  // The middle stages of a pipeline run the same ops, so a stage whose ops equal the previous
  // stage's takes its prices and counts what pricing it counted: its micro-batch passes alone,
  // or the whole stage (step buckets are sized differently on the first stage only).
  StageTimes passes;
  Tally passes_tally, stage_tally;
  for (std::size_t r = 0; r < w.stages.size(); ++r) {
    const StageProgram& s = w.stages[r];
    const bool same_passes = r > 0 && s.forward == w.stages[r - 1].forward && s.backward == w.stages[r - 1].backward;
    if (same_passes && r > 1 && s.step == w.stages[r - 1].step) {
      e.stages.push_back(e.stages.back());
      reductions[r] = reductions[r - 1];
      gathers[r] = gathers[r - 1];
      tally.add(stage_tally);
      continue;
    }
    const Tally before = tally;
    if (same_passes) {
      tally.add(passes_tally);
    } else {
      passes = micro_batch_passes(s, pricer, w.overlap_moe_expert_parallel_comm);
      passes_tally = tally.since(before);
    }
    StageTimes t = passes;
    for (const auto& o : s.step) {
      if (o.cost == Cost::kOptimizer) {
        t.optimizer_s += pricer.op(o);
        continue;
      }
      const double bucket = r == 0 ? w.grad_bucket_parameters : w.overlap_grad_reduce ? o.parameters / v : 0;
      auto price_s = [&](double bytes) {
        PricedOp p = costs.collective(o.collective, bytes, o.group_ranks, o.group_nodes);
        tally.count(p);
        return p.seconds;
      };
      const bool gather = o.collective == CollectiveKind::kAllGather;
      std::vector<Bucket> b = split_into_buckets(gather ? BucketUse::kGather : BucketUse::kReduction, o.parameters,
                                                 o.bytes, bucket, price_s);
      auto& into = gather ? gathers[r] : reductions[r];
      into.insert(into.end(), b.begin(), b.end());
    }
    e.stages.push_back(t);
    stage_tally = tally.since(before);
  }
  // Gradient reduction overlaps the last micro-batch's backward (overlap_grad_reduce), the
  // parameter gather the next step's first forward (overlap_param_gather); stage r also has
  // the pipeline's drain (fill) behind it: r chunks of backward (forward) before stage 0 ends
  // (starts). Without overlap both are exposed whole.
  double mean_forward = 0, mean_backward = 0;
  for (const StageTimes& t : e.stages) {
    mean_forward += t.forward_s / p;
    mean_backward += t.backward_s / p;
  }
  auto serial_s = [](const std::vector<Bucket>& buckets) {
    double sum = 0;
    for (const Bucket& b : buckets) sum += b.seconds;
    return sum;
  };
  for (std::size_t r = 0; r < e.stages.size(); ++r) {
    StageTimes& t = e.stages[r];
    const double chunks_ahead = static_cast<double>(r) / v;
    const double reduce_s =
        w.overlap_grad_reduce
            ? std::max(0.0, reduction_overrun_s(reductions[r], t.backward_s) - chunks_ahead * mean_backward)
            : serial_s(reductions[r]);
    const double gather_s = w.overlap_param_gather
                                ? std::max(0.0, gather_delay_s(gathers[r], t.forward_s) - chunks_ahead * mean_forward)
                                : serial_s(gathers[r]);
    t.dp_exposed_s = reduce_s + gather_s;
  }

  // Pipeline: the slowest stage sets the steady state; fill and drain cost (p - 1) chunks of
  // the average stage ((p - 1) / v of a stage when interleaved).
  const StageTimes& b = e.stages[bottleneck_stage(e)];
  double per_microbatch = b.forward_s + b.backward_s;
  double mean = mean_forward + mean_backward;
  double pipeline_s = m * per_microbatch + (p - 1) * mean / v;

  // Pipeline transfers: blocking in 1F1B (every micro-batch, forward and backward, plus the
  // fill); when interleaved, overlapped with compute except during the fill
  // (overlap_p2p_comm), or blocking for every chunk of every micro-batch.
  double p2p_s = 0;
  if (l.pp > 1) {
    PricedOp one = costs.collective(CollectiveKind::kSendRecv, w.p2p_bytes, 2, w.p2p_crosses_nodes ? 2 : 1);
    tally.count(one);
    const double exposed = l.virtual_stages == 1 ? m + p - 1 : w.overlap_p2p_comm ? p - 1 : v * m + p - 1;
    p2p_s = 2 * exposed * one.seconds;
  }
  // The step ends when the last stage has synchronised its gradients and stepped.
  double tail = 0;
  for (const auto& t : e.stages) tail = std::max(tail, t.dp_exposed_s + t.optimizer_s);
  std::size_t tail_stage = 0;
  for (std::size_t r = 0; r < e.stages.size(); ++r) {
    if (e.stages[r].dp_exposed_s + e.stages[r].optimizer_s >= tail) tail_stage = r;
  }

  e.step_time_s = pipeline_s + p2p_s + tail;
  e.breakdown.compute_s = m * b.compute_s;
  e.breakdown.tp_comm_s = m * b.tp_comm_s;
  e.breakdown.cp_comm_s = m * b.cp_comm_s;
  e.breakdown.ep_comm_s = m * b.ep_comm_s;
  e.breakdown.bubble_s = (p - 1) * mean / v;
  e.breakdown.pp_comm_s = p2p_s;
  e.breakdown.dp_comm_s = e.stages[tail_stage].dp_exposed_s + m * b.dp_in_microbatch_s;
  e.breakdown.optimizer_s = e.stages[tail_stage].optimizer_s;

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
  e.priced_ops = tally.priced;
  e.extrapolated_ops = tally.extrapolated;
  e.roofline_ops = tally.roofline;
  return e;
}

}  // namespace clustersim
