#include "sim/serving/serve_engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <unordered_set>

#include "models/accounting/integer_division.hpp"
#include "sim/serving/serve_afd.hpp"

namespace clustersim::sim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// DistServe's decode instance accepts hand-offs while the requests it accepted since its last
// iteration hold less than this share of its KV blocks (DecodingStageSchedConfig's
// waiting_block_prop_threshold, 0.05 in its API server; LLMServe/DistServe 20a1633,
// distserve/api_server/distserve_api_server.py).
constexpr double kDistServeAcceptShare = 0.05;

// Send/recv time by message size, sampled from the CostModel on a log grid (per scope).
struct TransferTable {
  static constexpr double kMin = 1024, kMax = 1LL << 40;
  static constexpr int kPoints = 61;
  double seconds[2][kPoints] = {};
  void build(const CostModel& cost) {
    for (int scope = 0; scope < 2; ++scope) {
      for (int i = 0; i < kPoints; ++i) {
        const double bytes = kMin * std::pow(kMax / kMin, i / double(kPoints - 1));
        seconds[scope][i] = cost.collective(CollectiveKind::kSendRecv, bytes, 2, scope == 0 ? 1 : 2).seconds;
      }
    }
  }
  double time_s(double bytes, bool same_node) const {
    const auto& s = seconds[same_node ? 0 : 1];
    if (bytes <= kMin) return s[0];
    const double x = std::log(bytes / kMin) / std::log(kMax / kMin) * (kPoints - 1);
    const int i = std::min(kPoints - 2, static_cast<int>(x));
    return s[i] + (s[i + 1] - s[i]) * (x - i);
  }
};

enum class Kind : std::uint8_t { kColocated, kPrefill, kDecode };
enum class Phase : std::uint8_t { kWaiting, kPrefilling, kDecoding, kPending, kTransferring, kSwapped, kDone, kDropped };

struct Req {
  std::int32_t inst = -1;      // instance holding it
  std::int32_t src = -1;       // prefill instance during a hand-off
  std::int32_t target = 0;     // tokens to prefill (input, plus generated ones after a preemption)
  std::int32_t done = 0;       // prefilled tokens (cached ones included)
  std::int32_t cached = 0;
  std::int32_t kv_tokens = 0;  // tokens whose KV is held
  std::int32_t blocks = 0;
  std::int32_t src_blocks = 0;  // blocks still held on the prefill instance during a hand-off
  std::int32_t generated = 0;
  std::int32_t preemptions = 0;
  Phase phase = Phase::kWaiting;
  double first_token_s = -1, finish_s = -1;
  double handoff_s = 0;  // --network flows: when its KV hand-off was admitted
  // Layer-wise KV: streaming to stream_dst (blocks reserved there) since its last prefill
  // iteration started; ready once that iteration and the last layer's share have passed.
  bool streaming = false, stream_done = false;
  std::int32_t stream_dst = -1, stream_blocks = 0;
  double stream_ready_s = 0;
};

struct Entry {
  std::int32_t req = 0;
  std::int32_t tokens = 0;
  bool prefill = false;
};

struct Inst {
  std::int32_t plan = 0;
  Kind kind = Kind::kColocated;
  std::int64_t node = 0;
  InstancePlace place;
  std::int32_t total_blocks = 0, free_blocks = 0, watermark_blocks = 0;
  std::vector<std::int32_t> waiting;  // FIFO from waiting_head
  std::size_t waiting_head = 0;
  std::vector<std::int32_t> resumed;  // preempted, served before waiting (LIFO)
  std::vector<std::int32_t> swapped;   // DistServe decode: swapped out to host memory, back first (FIFO)
  std::vector<std::int32_t> accepted;  // DistServe decode: migrated (or migrating), not yet batched (FIFO)
  std::vector<std::int32_t> running;
  std::vector<std::int32_t> pending;  // decode side: prefilled, waiting for blocks to transfer
  std::size_t pending_head = 0;
  // DistServe decode under --network flows: accepted hand-offs migrated one after another.
  std::vector<std::int32_t> migrations;
  std::size_t migration_head = 0;
  double migration_begin = 0;
  std::int32_t streams = 0;  // layer-wise KV streaming in (counted against max_num_seqs)
  // --network flows: an iteration whose inter-instance traffic (draft/target exchange, M2N)
  // is in flight; it ends once that traffic has, its communication terms scaled by how much
  // slower the traffic was than alone.
  std::int32_t traffic_pending = 0;
  double traffic_slowdown = 1;
  double deferred_fixed_s = 0;  // the iteration's time besides its communication
  double deferred_sync_s = 0;   // speculative: the exchange, alone
  AfdStageTimes deferred_afd;   // attention/FFN: the stages, the link's alone
  std::int64_t deferred_m = 0;
  std::vector<Entry> batch;
  bool busy = false;
  double iteration_start = 0;
  std::int64_t outstanding = 0;
  double egress_free = 0, ingress_free = 0;
  // Accounting.
  double busy_s = 0, kv_integral = 0, kv_last_t = 0;
  std::int32_t kv_peak = 0;
  std::int64_t iterations = 0, batch_tokens = 0;
  double afd_closed_sum = 0, afd_event_sum = 0;
  std::int64_t afd_iterations = 0;
  // Prefix cache: hashes present, FIFO eviction.
  std::unordered_set<std::uint64_t> cache;
  std::vector<std::uint64_t> cache_fifo;
  std::size_t cache_head = 0, cache_capacity = 0;
};

struct Event {
  double t;
  std::uint64_t seq;
  // 0 iteration end, 1 transfer end, 2 end of a decode instance's migrations (DistServe), 3 end
  // of a layer-wise KV stream
  std::int32_t kind;
  std::int32_t a;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

}  // namespace

// Prefill chunks of one iteration: attention time of the composed price, and the sums the
// measured prefill fit takes. A chunk after `prefix` cached tokens counts chunk*(2*prefix+chunk)
// squared tokens: its attention work relative to a whole prompt's l^2 (equal when prefix = 0).
struct PrefillWork {
  double attention_s = 0;
  std::int64_t sequences = 0;
  double tokens = 0, squares = 0;
  void add(const IterationCost& c, double prefix, double chunk) {
    attention_s += c.prefill_attention_s(prefix, chunk);
    sequences++;
    tokens += chunk;
    squares += chunk * (2 * prefix + chunk);
  }
};

struct ServeSimulator::PoolPlan {
  std::int32_t pool = 0;
  Kind kind = Kind::kColocated;
  bool entry = false;  // receives arrivals
  bool measured = false;  // iterations priced by measured whole-iteration fits
  std::int32_t cost = -1, draft_cost = -1;
  std::int64_t instances = 0, first_gpu = 0, gpus_per_instance = 1;
  std::int32_t blocks = 0;
  std::int64_t gamma = 0;
  double alpha = 0;
  // AFD.
  bool afd = false;
  std::int32_t expert_cost = -1;
  std::int64_t micro_batches = 0, attention_instances = 0;
  double m2n_latency_s = 0, m2n_s_per_byte = 0, m2n_bytes_per_token = 0;
  InstancePlace experts;                       // the expert pool's GPUs (AFD)
  std::int64_t draft_first_gpu = 0, draft_gpus = 1;  // the draft pool (speculative)
  TransferTable transfer;
};

ServeSimulator::ServeSimulator(const ModelSpec& model, const ServeDeployment& d, const ClusterSpec& cluster,
                               const CostModel& cost, const ModelSpec* draft, ServeNetworkMode network)
    : deployment_(d), cluster_(cluster), network_(network), gpus_per_node_(cluster.node.gpus_per_node) {
  Diagnostics diag;
  std::vector<std::int32_t> cost_of_pool(d.pools.size(), -1);
  std::int64_t max_gamma = 0;
  for (const auto& p : d.pools) {
    if (p.speculative) max_gamma = std::max(max_gamma, p.speculative->draft_tokens);
  }
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    const PoolSpec& p = d.pools[i];
    if (p.role == PoolRole::kDraft && !draft) continue;
    if (p.role == PoolRole::kExpert) continue;  // priced per attention pool below
    InstanceShape s;
    s.tp = p.tp;
    s.pp = p.pp;
    s.ep = p.ep;
    s.gpus_per_node = gpus_per_node_;
    // The largest CUDA-graph batch a decode-only iteration can be padded to (trtllm).
    const auto& graphs = p.cuda_graph_batch_sizes;
    const auto graph = std::lower_bound(graphs.begin(), graphs.end(), p.max_sequences);
    const std::int64_t padded = graph == graphs.end() ? 0 : *graph;
    s.max_tokens = std::max({p.max_batch_tokens, p.token_budget, p.max_sequences * (max_gamma + 1), padded});
    s.max_sequences = std::max(p.max_sequences, padded);
    s.memory_fraction = p.memory_fraction;
    s.hbm_bytes = cluster.gpu.hbm_bytes;
    const ModelSpec& m = p.role == PoolRole::kDraft ? *draft : model;
    costs_.push_back(std::make_unique<IterationCost>(m, s, cost, d.dtype));
    cost_of_pool[i] = static_cast<std::int32_t>(costs_.size() - 1);
    const double cap = costs_.back()->kv_capacity_tokens();
    if (cap < static_cast<double>(p.kv_block_tokens) && p.role != PoolRole::kDraft) {
      diag.error(d.source, p.pointer,
                 fmt::format("the weights ({:.1f} GiB per GPU) leave no room for a KV cache in {:.0f}% of {:.0f} GiB",
                             costs_.back()->weight_bytes_per_gpu() / (1 << 30), 100 * p.memory_fraction,
                             static_cast<double>(cluster.gpu.hbm_bytes) / (1 << 30)),
                 "raise tensor_parallel_size or pipeline_parallel_size");
    }
  }
  diag.throw_if_errors();
  PricedOp sync = cost.collective(CollectiveKind::kSendRecv, 4096, 2, 2);
  sync_s_ = sync.seconds;

  std::int64_t gpu = 0;
  for (std::size_t i = 0; i < d.pools.size(); ++i) {
    const PoolSpec& p = d.pools[i];
    gpu = p.first_gpu;
    if (p.role == PoolRole::kDraft || p.role == PoolRole::kExpert) continue;
    PoolPlan plan;
    plan.pool = static_cast<std::int32_t>(i);
    bool has_prefill = false;
    for (const auto& q : d.pools) has_prefill = has_prefill || q.role == PoolRole::kPrefill;
    plan.kind = p.role == PoolRole::kPrefill ? Kind::kPrefill
                : (p.role == PoolRole::kDecode || p.role == PoolRole::kAttention ||
                   (p.role == PoolRole::kTarget && has_prefill))
                    ? Kind::kDecode
                    : Kind::kColocated;
    plan.entry = plan.kind != Kind::kDecode;
    plan.cost = cost_of_pool[i];
    plan.instances = p.instances();
    plan.first_gpu = gpu;
    plan.gpus_per_instance = p.gpus_per_instance();
    plan.blocks = static_cast<std::int32_t>(
        std::min(1e9, std::floor(costs_[static_cast<std::size_t>(plan.cost)]->kv_capacity_tokens() /
                                 static_cast<double>(p.kv_block_tokens))));
    plan.transfer.build(cost);
    if (p.speculative) {
      const auto di = static_cast<std::size_t>(d.pool(p.speculative->draft_pool) - d.pools.data());
      plan.draft_cost = cost_of_pool[di];
      plan.draft_first_gpu = d.pools[di].first_gpu;
      plan.draft_gpus = d.pools[di].gpus_per_instance();
      plan.gamma = p.speculative->draft_tokens;
      plan.alpha = p.speculative->acceptance_rate;
    }
    if (p.afd) {
      const PoolSpec& e = *d.pool(p.afd->expert_pool);
      InstanceShape s;
      const std::int64_t n_e = std::max<std::int64_t>(1, e.gpus / e.tp);
      s.tp = e.tp * n_e;  // experts spread over all expert GPUs
      s.ep = n_e;
      s.gpus_per_node = gpus_per_node_;
      s.max_tokens = p.max_sequences * p.instances();
      s.max_sequences = 1;
      s.hbm_bytes = cluster.gpu.hbm_bytes;
      costs_.push_back(std::make_unique<IterationCost>(model, s, cost, d.dtype));
      plan.afd = true;
      plan.experts = {e.first_gpu, e.gpus};
      plan.expert_cost = static_cast<std::int32_t>(costs_.size() - 1);
      plan.micro_batches = p.afd->micro_batches;
      plan.attention_instances = p.instances();
      // M2N: each token goes to top-k experts: h * k * bytes per token per direction.
      plan.m2n_bytes_per_token = static_cast<double>(model.hidden_size) *
                                 static_cast<double>(std::max<std::int64_t>(1, model.num_experts_per_tok)) *
                                 bytes_per_element(d.dtype);
      const double t1 = cost.collective(CollectiveKind::kSendRecv, 1 << 16, 2, 2).seconds;
      const double t2 = cost.collective(CollectiveKind::kSendRecv, 1 << 24, 2, 2).seconds;
      plan.m2n_s_per_byte = (t2 - t1) / ((1 << 24) - (1 << 16));
      plan.m2n_latency_s = std::max(0.0, t1 - plan.m2n_s_per_byte * (1 << 16));
    }
    const IterationCost& ic = *costs_[static_cast<std::size_t>(plan.cost)];
    plan.measured = plan.draft_cost < 0 && !plan.afd && (plan.kind == Kind::kDecode || ic.measured_prefill()) &&
                    (plan.kind == Kind::kPrefill || ic.measured_decode());
    plans_.push_back(std::move(plan));
  }
}

ServeSimulator::~ServeSimulator() = default;

std::vector<bool> ServeSimulator::measured_costs() const {
  std::vector<bool> measured(costs_.size(), false);
  for (const auto& plan : plans_) measured[static_cast<std::size_t>(plan.cost)] = plan.measured;
  return measured;
}

bool ServeSimulator::extrapolated() const {
  const std::vector<bool> measured = measured_costs();
  for (std::size_t i = 0; i < costs_.size(); ++i) {
    if (measured[i] ? costs_[i]->measured_extrapolated() : costs_[i]->extrapolated()) return true;
  }
  return false;
}

std::vector<std::string> ServeSimulator::roofline_bases() const {
  std::vector<std::string> out;
  const std::vector<bool> measured = measured_costs();
  for (std::size_t i = 0; i < costs_.size(); ++i) {
    if (measured[i]) continue;
    for (const auto& b : costs_[i]->roofline_bases()) {
      if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

ServeOutcome ServeSimulator::run(const RequestSet& set, const TraceWindow* window, traces::ChromeTraceWriter* trace,
                                 std::uint64_t seed) const {
  if (network_ == ServeNetworkMode::kFlows) return run_on_fabric(set, window, trace, seed);
  return run_engine(set, window, trace, seed, nullptr);
}

ServeOutcome ServeSimulator::run_engine(const RequestSet& set, const TraceWindow* window,
                                        traces::ChromeTraceWriter* trace, std::uint64_t seed, ServeFlows* flows) const {
  const auto wall0 = std::chrono::steady_clock::now();
  const ServeDeployment& d = deployment_;
  const auto& reqs = set.requests;
  const auto n_req = reqs.size();
  std::vector<Req> rs(n_req);
  std::vector<Inst> insts;
  std::vector<std::int32_t> entry_insts, decode_insts;
  for (std::size_t pi = 0; pi < plans_.size(); ++pi) {
    const PoolPlan& plan = plans_[pi];
    const PoolSpec& p = d.pools[static_cast<std::size_t>(plan.pool)];
    for (std::int64_t k = 0; k < plan.instances; ++k) {
      Inst in;
      in.plan = static_cast<std::int32_t>(pi);
      in.kind = plan.kind;
      in.node = (plan.first_gpu + k * plan.gpus_per_instance) / gpus_per_node_;
      in.place = {plan.first_gpu + k * plan.gpus_per_instance, plan.gpus_per_instance};
      in.total_blocks = in.free_blocks = plan.blocks;
      in.watermark_blocks = static_cast<std::int32_t>(std::ceil(p.watermark * plan.blocks));
      in.batch.reserve(static_cast<std::size_t>(p.max_sequences) + 8);
      in.running.reserve(static_cast<std::size_t>(p.max_sequences) + 8);
      in.cache_capacity = set.hash_ids.empty()
                              ? 0
                              : static_cast<std::size_t>(static_cast<double>(plan.blocks) * static_cast<double>(p.kv_block_tokens) /
                                                         static_cast<double>(d.prefix_block_tokens));
      if (in.cache_capacity > 0) in.cache.reserve(in.cache_capacity);
      const auto id = static_cast<std::int32_t>(insts.size());
      (plan.entry ? entry_insts : decode_insts).push_back(id);
      insts.push_back(std::move(in));
    }
  }
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  std::uint64_t seq = 0;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double now = 0;
  std::int64_t preemptions = 0, transfers = 0;
  double transfer_sum = 0;
  std::size_t rr_entry = 0, rr_decode = 0;
  double cached_tokens = 0, prompt_tokens = 0;
  // --network flows: per transfer id, the request it hands off and what the closed form charges.
  std::vector<std::int32_t> transfer_req;
  std::vector<double> transfer_closed_s, transfer_start_s;
  double slowdown_sum = 0;

  auto pool_of = [&](const Inst& in) -> const PoolSpec& { return d.pools[static_cast<std::size_t>(plans_[static_cast<std::size_t>(in.plan)].pool)]; };
  auto plan_of = [&](const Inst& in) -> const PoolPlan& { return plans_[static_cast<std::size_t>(in.plan)]; };
  auto cost_of = [&](const Inst& in) -> const IterationCost& { return *costs_[static_cast<std::size_t>(plan_of(in).cost)]; };
  auto blocks_for = [&](const Inst& in, std::int64_t tokens) {
    const std::int64_t b = pool_of(in).kv_block_tokens;
    return static_cast<std::int32_t>(ceil_div(tokens, b));
  };
  auto account = [&](Inst& in) {
    const std::int32_t used = in.total_blocks - in.free_blocks;
    in.kv_integral += static_cast<double>(used) * (now - in.kv_last_t);
    in.kv_last_t = now;
  };
  auto change_blocks = [&](Inst& in, Req& r, std::int32_t blocks) {  // set r's blocks on `in`
    account(in);
    in.free_blocks -= blocks - r.blocks;
    r.blocks = blocks;
    in.kv_peak = std::max(in.kv_peak, in.total_blocks - in.free_blocks);
  };
  auto prefix_hit = [&](const Inst& in, std::size_t ri) -> std::int32_t {
    const ServeRequest& q = reqs[ri];
    if (in.cache_capacity == 0) return 0;
    std::int64_t hit = 0;
    for (auto h = q.hash_begin; h < q.hash_end; ++h) {
      if (!in.cache.count(set.hash_ids[h])) break;
      hit += d.prefix_block_tokens;
    }
    return static_cast<std::int32_t>(std::min<std::int64_t>(hit, q.input_tokens - 1));
  };
  auto cache_insert = [&](Inst& in, std::size_t ri) {
    const ServeRequest& q = reqs[ri];
    if (in.cache_capacity == 0) return;
    for (auto h = q.hash_begin; h < q.hash_end; ++h) {
      const std::uint64_t id = set.hash_ids[h];
      if (!in.cache.insert(id).second) continue;
      in.cache_fifo.push_back(id);
      if (in.cache.size() > in.cache_capacity) {
        in.cache.erase(in.cache_fifo[in.cache_head++]);
        if (in.cache_head > 4096 && in.cache_head * 2 > in.cache_fifo.size()) {
          in.cache_fifo.erase(in.cache_fifo.begin(), in.cache_fifo.begin() + static_cast<std::ptrdiff_t>(in.cache_head));
          in.cache_head = 0;
        }
      }
    }
  };
  auto route = [&](const std::vector<std::int32_t>& cands, std::size_t& rr, std::size_t ri) {
    if (d.router == RouterPolicy::kRoundRobin) return cands[rr++ % cands.size()];
    std::int32_t best = cands.front();
    double best_score = -kInf;
    for (auto c : cands) {
      const Inst& in = insts[static_cast<std::size_t>(c)];
      double score;
      if (d.router == RouterPolicy::kLeastOutstanding) {
        score = -static_cast<double>(in.outstanding);
      } else {  // KV-aware: prefix hits first, then free KV after what is queued
        score = 1e6 * prefix_hit(in, ri) + static_cast<double>(in.free_blocks) -
                static_cast<double>(in.outstanding) * 1e-3 -
                static_cast<double>((in.waiting.size() - in.waiting_head) + (in.pending.size() - in.pending_head)) * 64;
      }
      if (score > best_score) {
        best_score = score;
        best = c;
      }
    }
    return best;
  };
  auto finish = [&](Inst& in, std::int32_t ri) {
    Req& r = rs[static_cast<std::size_t>(ri)];
    change_blocks(in, r, 0);
    r.phase = Phase::kDone;
    r.finish_s = now;
    in.outstanding--;
  };
  std::function<void(Inst&, std::int32_t)> preempt;
  std::function<void(std::int32_t)> try_start;
  std::function<void(std::int32_t)> admit_transfers;
  std::function<void(Inst&, double)> stream_kv;
  const bool layerwise = d.kv_transfer == KvTransferMode::kLayerwise;
  auto enqueue_entry = [&](std::int32_t ri) {
    const auto inst = route(entry_insts, rr_entry, static_cast<std::size_t>(ri));
    Inst& in = insts[static_cast<std::size_t>(inst)];
    rs[static_cast<std::size_t>(ri)].inst = inst;
    in.outstanding++;
    in.waiting.push_back(ri);
    return inst;
  };
  preempt = [&](Inst& in, std::int32_t ri) {
    Req& r = rs[static_cast<std::size_t>(ri)];
    change_blocks(in, r, 0);
    r.preemptions++;
    preemptions++;
    r.kv_tokens = 0;
    r.done = 0;
    r.cached = 0;
    r.target = reqs[static_cast<std::size_t>(ri)].input_tokens + r.generated;
    r.phase = Phase::kWaiting;
    if (in.kind == Kind::kDecode) {  // recompute on a prefill instance
      in.outstanding--;
      const auto e = route(entry_insts, rr_entry, static_cast<std::size_t>(ri));
      Inst& pe = insts[static_cast<std::size_t>(e)];
      r.inst = e;
      pe.outstanding++;
      pe.resumed.push_back(ri);
      if (!pe.busy) try_start(e);
    } else {
      in.resumed.push_back(ri);
    }
  };
  const bool distserve = d.engine == ServeEngine::kDistServe;
  // TensorRT-LLM (tensorrt_llm/llmapi/llm_args.py SchedulerConfig: GUARANTEED_NO_EVICT by default)
  // reserves a request's blocks for its prompt and every output token when it admits it.
  const bool trtllm = d.engine == ServeEngine::kTrtllm;
  // A decode request that runs out of blocks: DistServe swaps it out to host memory (its blocks
  // free, no recompute) and resumes it before anything else once they fit; vLLM preempts it by
  // recompute.
  auto evict = [&](Inst& in, std::int32_t ri) {
    if (!distserve || in.kind != Kind::kDecode) return preempt(in, ri);
    Req& r = rs[static_cast<std::size_t>(ri)];
    change_blocks(in, r, 0);
    r.phase = Phase::kSwapped;
    r.preemptions++;
    preemptions++;
    in.swapped.push_back(ri);
  };
  auto swap_in = [&](Inst& in) {
    const PoolSpec& p = pool_of(in);
    std::size_t k = 0;
    for (; k < in.swapped.size() && static_cast<std::int64_t>(in.running.size()) < p.max_sequences; ++k) {
      const std::int32_t ri = in.swapped[k];
      Req& r = rs[static_cast<std::size_t>(ri)];
      const std::int32_t need = blocks_for(in, r.kv_tokens + 1);
      if (need > in.free_blocks) break;
      change_blocks(in, r, need);
      r.phase = Phase::kDecoding;
      in.running.push_back(ri);
    }
    in.swapped.erase(in.swapped.begin(), in.swapped.begin() + static_cast<std::ptrdiff_t>(k));
    // Then the accepted requests, in order, once nothing is swapped out; DistServe's check counts
    // a request's blocks a second time (they are held already), so it needs that many free.
    k = 0;
    for (; in.swapped.empty() && k < in.accepted.size() && static_cast<std::int64_t>(in.running.size()) < p.max_sequences;
         ++k) {
      const std::int32_t ri = in.accepted[k];
      const Req& r = rs[static_cast<std::size_t>(ri)];
      if (r.phase != Phase::kDecoding || r.blocks > in.free_blocks) break;
      in.running.push_back(ri);
    }
    in.accepted.erase(in.accepted.begin(), in.accepted.begin() + static_cast<std::ptrdiff_t>(k));
  };
  // Decode-side block growth for the running requests (evicting from the back when short).
  auto grow_running = [&](Inst& in, std::int32_t step, std::int64_t& kv_sum, std::int64_t& decodes) {
    std::size_t i = 0;
    while (i < in.running.size()) {
      const std::int32_t ri = in.running[i];
      Req& r = rs[static_cast<std::size_t>(ri)];
      if (r.phase != Phase::kDecoding) {
        ++i;
        continue;
      }
      // Reserved to completion (trtllm): a step never needs more blocks than admission took.
      const std::int32_t need = trtllm ? std::max(blocks_for(in, r.kv_tokens + step), r.blocks)
                                       : blocks_for(in, r.kv_tokens + step);
      bool self = false, stuck = false;
      while (need - r.blocks > in.free_blocks) {
        // Victim: the most recently admitted request that holds blocks here.
        std::size_t j = in.running.size();
        while (j > i) {
          const Phase ph = rs[static_cast<std::size_t>(in.running[j - 1])].phase;
          if (ph == Phase::kDecoding || ph == Phase::kPrefilling) break;
          --j;
        }
        if (j == i) {  // only r itself (or transfers in flight) left
          if (in.running.size() == i + 1 || j == i) {
            stuck = true;
            break;
          }
        }
        const std::int32_t victim = in.running[j - 1];
        in.running.erase(in.running.begin() + static_cast<std::ptrdiff_t>(j - 1));
        evict(in, victim);
        if (victim == ri) {
          self = true;
          break;
        }
      }
      if (self) break;
      if (stuck) {
        // Nothing else to evict: r gives up its blocks (recomputes or swaps back in later).
        in.running.erase(in.running.begin() + static_cast<std::ptrdiff_t>(i));
        evict(in, ri);
        continue;
      }
      change_blocks(in, r, need);
      in.batch.push_back({ri, step, false});
      kv_sum += r.kv_tokens;
      decodes++;
      ++i;
    }
  };
  auto next_candidate = [&](Inst& in) -> std::int32_t {
    if (!in.resumed.empty()) return in.resumed.back();
    if (in.waiting_head < in.waiting.size()) return in.waiting[in.waiting_head];
    return -1;
  };
  auto pop_candidate = [&](Inst& in) {
    if (!in.resumed.empty()) {
      in.resumed.pop_back();
    } else if (++in.waiting_head > 4096 && in.waiting_head * 2 > in.waiting.size()) {
      in.waiting.erase(in.waiting.begin(), in.waiting.begin() + static_cast<std::ptrdiff_t>(in.waiting_head));
      in.waiting_head = 0;
    }
  };
  // Admits new prefills within `budget` tokens; returns tokens used.
  auto admit_prefills = [&](Inst& in, std::int64_t budget, bool chunked, PrefillWork& pf, std::int64_t& sampling) {
    const PoolSpec& p = pool_of(in);
    const IterationCost& c = cost_of(in);
    std::int64_t used = 0;
    while (budget - used > 0) {
      const std::int32_t ri = next_candidate(in);
      if (ri < 0) break;
      if (static_cast<std::int64_t>(in.running.size()) >= p.max_sequences) break;
      Req& r = rs[static_cast<std::size_t>(ri)];
      if (r.target == 0) r.target = reqs[static_cast<std::size_t>(ri)].input_tokens;
      const std::int32_t need_blocks =
          blocks_for(in, trtllm ? r.target + reqs[static_cast<std::size_t>(ri)].output_tokens : r.target + 1);
      // Can never fit (trtllm: nor a prompt beyond max_num_batched_tokens, which it rejects): drop.
      if (need_blocks > in.total_blocks - in.watermark_blocks ||
          (trtllm && r.target - r.done > p.max_batch_tokens)) {
        pop_candidate(in);
        r.phase = Phase::kDropped;
        in.outstanding--;
        continue;
      }
      if (in.free_blocks - need_blocks < in.watermark_blocks) break;
      if (r.preemptions == 0 || r.done == 0) {
        r.cached = r.preemptions == 0 ? prefix_hit(in, static_cast<std::size_t>(ri)) : 0;
        r.done = r.cached;
        r.kv_tokens = r.cached;
        if (r.preemptions == 0) {
          cached_tokens += r.cached;
          prompt_tokens += r.target;
        }
      }
      const std::int64_t remaining = r.target - r.done;
      // Whole prompts: vLLM lets the first exceed the budget, TensorRT-LLM's micro-batch
      // scheduler does not take a prompt beyond the tokens left.
      if (!chunked && (used > 0 || trtllm) && used + remaining > budget) break;
      pop_candidate(in);
      change_blocks(in, r, need_blocks);
      r.phase = Phase::kPrefilling;
      in.running.push_back(ri);
      const auto chunk = static_cast<std::int32_t>(chunked ? std::min<std::int64_t>(remaining, budget - used) : remaining);
      in.batch.push_back({ri, chunk, true});
      pf.add(c, r.done, chunk);
      if (r.done + chunk >= r.target) sampling++;
      used += chunk;
    }
    return used;
  };
  // --network flows: traffic of instance `id`'s iteration (transfer ids tagged -(id + 1)).
  auto start_traffic = [&](std::int32_t id, const InstancePlace& from, const InstancePlace& to, double bytes,
                           double closed) {
    const TransferId t = flows->start(from, to, bytes, closed, now);
    if (static_cast<std::size_t>(t) != transfer_req.size()) throw std::logic_error("transfer ids out of order");
    transfer_req.push_back(-(id + 1));
    transfer_closed_s.push_back(closed);
    transfer_start_s.push_back(now);
  };
  try_start = [&](std::int32_t id) {
    Inst& in = insts[static_cast<std::size_t>(id)];
    if (in.busy) return;
    const PoolSpec& p = pool_of(in);
    const PoolPlan& plan = plan_of(in);
    const IterationCost& c = cost_of(in);
    in.batch.clear();
    PrefillWork pf;
    std::int64_t tokens = 0, sampling = 0, kv_sum = 0, decodes = 0;
    const std::int32_t step = plan.gamma > 0 ? static_cast<std::int32_t>(plan.gamma + 1) : 1;
    if (trtllm) {
      // In-flight batching: every running request's next token, then whole new prompts within
      // max_num_batched_tokens (no chunking: trtllm-bench leaves chunked prefill off).
      grow_running(in, step, kv_sum, decodes);
      tokens = decodes * step;
      sampling = decodes;
      tokens += admit_prefills(in, p.max_batch_tokens - tokens, false, pf, sampling);
    } else if (p.scheduler == ServeScheduler::kSarathi) {
      // Decodes first, then ongoing prefill chunks, then new prefills, within the budget.
      if (in.kind != Kind::kPrefill) grow_running(in, step, kv_sum, decodes);
      tokens = decodes * step;
      sampling = decodes;
      for (auto ri : in.running) {
        Req& r = rs[static_cast<std::size_t>(ri)];
        if (r.phase != Phase::kPrefilling || tokens >= p.token_budget) continue;
        const auto chunk = static_cast<std::int32_t>(std::min<std::int64_t>(r.target - r.done, p.token_budget - tokens));
        in.batch.push_back({ri, chunk, true});
        pf.add(c, r.done, chunk);
        if (r.done + chunk >= r.target) sampling++;
        tokens += chunk;
      }
      if (in.kind != Kind::kDecode) tokens += admit_prefills(in, p.token_budget - tokens, true, pf, sampling);
    } else {
      // vLLM: a batch of whole prefills when any fits, else one decode step of all running.
      if (in.kind != Kind::kDecode) tokens = admit_prefills(in, p.max_batch_tokens, false, pf, sampling);
      if (in.batch.empty() && in.kind != Kind::kPrefill) {
        if (distserve && in.kind == Kind::kDecode) swap_in(in);
        grow_running(in, step, kv_sum, decodes);
        tokens = decodes * step;
        sampling = decodes;
      }
    }
    if (in.batch.empty()) return;
    double t = 0;
    if (plan.measured) {
      // Measured whole iterations (docs/serve.md): prefill chunks by the prefill fit, decodes by
      // the decode fit over their contexts including the new token; one intercept per iteration.
      const ServeIterationFit* mp = c.measured_prefill();
      const ServeIterationFit* md = c.measured_decode();
      if (pf.sequences > 0) t += mp->seconds(pf.sequences, pf.tokens, pf.squares);
      if (decodes > 0) {
        t += md->seconds(decodes, static_cast<double>(kv_sum + decodes), 0);
        if (pf.sequences > 0) t -= std::min(md->segment(decodes).intercept_s, mp->segment(pf.sequences).intercept_s);
      }
    } else {
      // trtllm: a decode-only batch runs as the next captured CUDA graph's batch, padded with
      // dummy requests that go through every GEMM and the LM head (their attention is negligible).
      std::int64_t linear_tokens = tokens, logits_rows = sampling;
      const std::vector<std::int64_t>& graphs = p.cuda_graph_batch_sizes;
      if (trtllm && pf.sequences == 0 && decodes > 0 && !graphs.empty() && decodes <= graphs.back()) {
        const std::int64_t padded = *std::lower_bound(graphs.begin(), graphs.end(), decodes);
        linear_tokens = padded * step;
        logits_rows = padded;
      }
      t = c.linear_s(linear_tokens) + c.logits_s(logits_rows) + pf.attention_s;
      if (decodes > 0) t += c.decode_attention_s(static_cast<double>(kv_sum) * step);
    }
    // --network flows: this iteration's inter-instance traffic, started with it.
    std::int32_t traffic = 0;
    if (plan.draft_cost >= 0 && decodes > 0) {
      const IterationCost& dc = *costs_[static_cast<std::size_t>(plan.draft_cost)];
      const double draft = static_cast<double>(plan.gamma) *
                           (dc.linear_s(decodes) + dc.logits_s(decodes) + dc.decode_attention_s(static_cast<double>(kv_sum)));
      t = std::max(t, draft);
      if (flows) {
        // The draft instance paired with this target instance: the same index in its pool.
        const std::int64_t k = (in.place.first_gpu - plan.first_gpu) / plan.gpus_per_instance;
        const InstancePlace draft_place{plan.draft_first_gpu + k * plan.draft_gpus, plan.draft_gpus};
        start_traffic(id, in.place, draft_place, 4096, sync_s_);
        traffic++;
        in.deferred_sync_s = sync_s_;
        in.deferred_m = 0;
      } else {
        t += sync_s_;
      }
    }
    if (plan.afd && decodes > 0) {
      // Ping-pong micro-batches against the expert pool (all attention instances alike).
      const IterationCost& ec = *costs_[static_cast<std::size_t>(plan.expert_cost)];
      const double layers = static_cast<double>(c.layers());
      AfdStageTimes st;
      const std::int64_t m0 = plan.micro_batches;
      auto stages = [&](std::int64_t m) {
        const std::int64_t b = ceil_div(decodes, m);
        st.attention_s = (c.attention_linear_s(b) + c.decode_attention_s(static_cast<double>(kv_sum) / static_cast<double>(m))) / layers;
        st.expert_s = ec.ffn_linear_s(b * plan.attention_instances) / layers;
        st.comm_s = plan.m2n_latency_s + plan.m2n_s_per_byte * plan.m2n_bytes_per_token * static_cast<double>(b);
      };
      stages(std::max<std::int64_t>(m0, 2));
      const std::int64_t m = m0 > 0 ? m0 : afd_min_micro_batches(st);
      stages(m);
      const double closed = afd_closed_form_s(st, m, c.layers());
      in.afd_closed_sum += closed;
      in.afd_iterations++;
      if (flows) {
        // The iteration's dispatches (attention -> experts) and combines (back), m per layer,
        // as one transfer each way, alone as long as the link's share of the closed form.
        const double bytes = plan.m2n_bytes_per_token * static_cast<double>(decodes) * layers;
        const double alone = plan.m2n_latency_s + plan.m2n_s_per_byte * bytes;
        start_traffic(id, in.place, plan.experts, bytes, alone);
        start_traffic(id, plan.experts, in.place, bytes, alone);
        traffic += 2;
        in.deferred_afd = st;
        in.deferred_m = m;
        t = c.logits_s(sampling);
      } else {
        const double event = afd_event_level_s(st, m, c.layers());
        in.afd_event_sum += event;
        t = event + c.logits_s(sampling);
      }
    }
    // The engine's own work per iteration (scheduling, output processing per sequence).
    t += d.iteration_overhead_s + d.iteration_overhead_per_sequence_s * static_cast<double>(in.batch.size());
    if (layerwise && in.kind == Kind::kPrefill) stream_kv(in, t);
    in.busy = true;
    in.iteration_start = now;
    in.iterations++;
    in.batch_tokens += tokens;
    if (traffic > 0) {  // ends when its traffic has (traffic_done)
      in.traffic_pending = traffic;
      in.traffic_slowdown = 1;
      in.deferred_fixed_s = t;
      return;
    }
    in.busy_s += t;
    events.push({now + t, seq++, 0, id});
  };
  auto kv_transfer_s = [&](const Inst& src, const Inst& dst, double tokens) {
    const double bytes = cost_of(src).kv_bytes_per_token() * tokens;
    const std::int64_t shards = std::min(pool_of(src).tp * pool_of(src).pp, pool_of(dst).tp * pool_of(dst).pp);
    return plan_of(src).transfer.time_s(bytes / static_cast<double>(shards), src.node == dst.node);
  };
  // --network flows: the hand-off of request ri from its prefill instance to `dst` as flows.
  auto start_flows = [&](std::int32_t ri, std::int32_t dst_id) {
    const Req& r = rs[static_cast<std::size_t>(ri)];
    const Inst& src = insts[static_cast<std::size_t>(r.src)];
    const Inst& dst = insts[static_cast<std::size_t>(dst_id)];
    const double closed = kv_transfer_s(src, dst, r.kv_tokens);
    const TransferId t =
        flows->start(src.place, dst.place, cost_of(src).kv_bytes_per_token() * r.kv_tokens, closed, now);
    if (static_cast<std::size_t>(t) != transfer_req.size()) throw std::logic_error("transfer ids out of order");
    transfer_req.push_back(ri);
    transfer_closed_s.push_back(closed);
    transfer_start_s.push_back(now);
  };
  // Layer-wise KV: as a prefill iteration of `iteration_s` starts on `in`, each prompt it ends
  // that goes on to decode is routed now; if its decode instance admits it at once (nothing
  // pending there, a sequence slot, its blocks free above the watermark), the blocks are reserved
  // and its KV streams while the layers run: it cannot be there before the iteration's end plus
  // the last layer's share, nor sooner than the transfer alone. Otherwise it is handed off whole
  // when the iteration ends.
  stream_kv = [&](Inst& in, double iteration_s) {
    for (const auto& e : in.batch) {
      Req& r = rs[static_cast<std::size_t>(e.req)];
      if (!e.prefill || r.done + e.tokens < r.target) continue;
      if (r.generated + 1 >= reqs[static_cast<std::size_t>(e.req)].output_tokens) continue;
      const auto dst_id = route(decode_insts, rr_decode, static_cast<std::size_t>(e.req));
      Inst& dst = insts[static_cast<std::size_t>(dst_id)];
      const std::int32_t need = blocks_for(dst, r.target + 1);
      if (dst.pending_head < dst.pending.size() ||
          static_cast<std::int64_t>(dst.running.size()) + dst.streams >= pool_of(dst).max_sequences ||
          need > dst.total_blocks - dst.watermark_blocks || dst.free_blocks - need < dst.watermark_blocks) {
        continue;
      }
      account(dst);
      dst.free_blocks -= need;
      dst.kv_peak = std::max(dst.kv_peak, dst.total_blocks - dst.free_blocks);
      dst.streams++;
      dst.outstanding++;
      r.streaming = true;
      r.stream_done = false;
      r.stream_dst = dst_id;
      r.stream_blocks = need;
      const double closed = kv_transfer_s(in, dst, r.target);
      r.stream_ready_s = now + iteration_s + closed / static_cast<double>(cost_of(in).layers());
      if (flows) {
        // Sent from the iteration's start, not paced layer by layer (SimGrid 3.32 cannot cap a
        // host-to-host comm's rate): alone the same end; under contention it takes bandwidth
        // earlier than the layers would let it.
        const TransferId t =
            flows->start(in.place, dst.place, cost_of(in).kv_bytes_per_token() * r.target, closed, now);
        if (static_cast<std::size_t>(t) != transfer_req.size()) throw std::logic_error("transfer ids out of order");
        transfer_req.push_back(e.req);
        transfer_closed_s.push_back(closed);
        transfer_start_s.push_back(now);
      } else {
        const double start = std::max({now, in.egress_free, dst.ingress_free});
        const double end = std::max(start + closed, r.stream_ready_s);
        in.egress_free = dst.ingress_free = end;
        events.push({end, seq++, 3, e.req});
      }
    }
  };
  admit_transfers = [&](std::int32_t id) {
    Inst& dst = insts[static_cast<std::size_t>(id)];
    const PoolSpec& p = pool_of(dst);
    // DistServe: the decode instance accepts hand-offs between its iterations and migrates them
    // one after another, busy meanwhile; a round stops once the accepted requests hold the
    // accept share of its blocks.
    if (distserve && dst.busy) return;
    double cursor = now;
    std::int64_t accepted_blocks = 0;
    for (auto ri : dst.accepted) accepted_blocks += rs[static_cast<std::size_t>(ri)].blocks;
    while (dst.pending_head < dst.pending.size()) {
      if (distserve && static_cast<double>(accepted_blocks) >= kDistServeAcceptShare * dst.total_blocks) break;
      const std::int32_t ri = dst.pending[dst.pending_head];
      Req& r = rs[static_cast<std::size_t>(ri)];
      const std::int32_t need = blocks_for(dst, r.kv_tokens + 1);
      if (static_cast<std::int64_t>(dst.running.size()) + dst.streams >= p.max_sequences) break;
      if (need > dst.total_blocks - dst.watermark_blocks) {
        dst.pending_head++;
        r.phase = Phase::kDropped;
        dst.outstanding--;
        Inst& src = insts[static_cast<std::size_t>(r.src)];
        change_blocks(src, r, 0);
        try_start(r.src);
        continue;
      }
      if (dst.free_blocks - need < dst.watermark_blocks) break;
      dst.pending_head++;
      Inst& src = insts[static_cast<std::size_t>(r.src)];
      // Reserve on the decode side; the prefill side keeps its blocks until the copy is done.
      r.src_blocks = r.blocks;
      r.blocks = 0;
      change_blocks(dst, r, need);
      r.phase = Phase::kTransferring;
      r.inst = id;
      transfers++;
      // Counted against max_num_seqs while in flight; DistServe batches it later (swap_in).
      (distserve ? dst.accepted : dst.running).push_back(ri);
      if (flows) {
        // The flows' end comes from the fabric; DistServe migrates one request after another.
        r.handoff_s = now;
        if (distserve) {
          accepted_blocks += need;
          dst.migrations.push_back(ri);
        } else {
          start_flows(ri, id);
        }
        continue;
      }
      const double dur = kv_transfer_s(src, dst, r.kv_tokens);
      const double start = std::max({cursor, src.egress_free, dst.ingress_free});
      src.egress_free = dst.ingress_free = start + dur;
      if (distserve) {
        cursor = start + dur;
        accepted_blocks += need;
      }
      transfer_sum += start + dur - now;
      events.push({start + dur, seq++, 1, ri});
      if (trace && window && start < window->end_s && start + dur > window->begin_s) {
        trace->add_span({id, 1, "kv_transfer", "transfer", start, dur, {{"tokens", std::to_string(r.kv_tokens)}}});
      }
    }
    if (flows && distserve && dst.migration_head < dst.migrations.size()) {
      dst.busy = true;
      dst.migration_begin = now;
      start_flows(dst.migrations[dst.migration_head], id);
    }
    if (cursor > now) {
      dst.busy = true;
      dst.busy_s += cursor - now;
      events.push({cursor, seq++, 2, id});
    }
    if (dst.pending_head > 4096 && dst.pending_head * 2 > dst.pending.size()) {
      dst.pending.erase(dst.pending.begin(), dst.pending.begin() + static_cast<std::ptrdiff_t>(dst.pending_head));
      dst.pending_head = 0;
    }
  };

  // The KV of a hand-off is on the decode instance: the prefill instance frees its blocks.
  auto kv_arrived = [&](std::int32_t ri) {
    Req& r = rs[static_cast<std::size_t>(ri)];
    r.streaming = false;
    Inst& src = insts[static_cast<std::size_t>(r.src)];
    account(src);
    src.free_blocks += r.src_blocks;
    r.src_blocks = 0;
    r.phase = Phase::kDecoding;
    try_start(r.src);
    try_start(r.inst);
  };
  // A layer-wise stream is complete: the KV is there, unless its prefill iteration has not ended
  // yet (then it arrives when it does).
  auto stream_arrived = [&](std::int32_t ri) {
    Req& r = rs[static_cast<std::size_t>(ri)];
    if (r.phase == Phase::kPrefilling) {
      r.stream_done = true;
      return;
    }
    transfer_sum += now - r.handoff_s;
    kv_arrived(ri);
  };
  // --network flows: transfer t's last flow finished now.
  auto transfer_done = [&](TransferId t) {
    const auto ti = static_cast<std::size_t>(t);
    const std::int32_t ri = transfer_req[ti];
    if (ri < 0) {  // an iteration's traffic
      const std::int32_t id = -ri - 1;
      Inst& in = insts[static_cast<std::size_t>(id)];
      if (transfer_closed_s[ti] > 0) {
        in.traffic_slowdown = std::max(in.traffic_slowdown, (now - transfer_start_s[ti]) / transfer_closed_s[ti]);
      }
      if (--in.traffic_pending > 0) return;
      double total = in.deferred_fixed_s;
      if (in.deferred_m > 0) {
        const IterationCost& c = cost_of(in);
        AfdStageTimes st = in.deferred_afd;
        st.comm_s *= in.traffic_slowdown;
        const double event = afd_event_level_s(st, in.deferred_m, c.layers());
        in.afd_event_sum += event;
        total += event;
      } else {
        total += in.deferred_sync_s * in.traffic_slowdown;
      }
      const double end = std::max(now, in.iteration_start + total);
      in.busy_s += end - in.iteration_start;
      events.push({end, seq++, 0, id});
      return;
    }
    slowdown_sum += transfer_closed_s[ti] > 0 ? (now - transfer_start_s[ti]) / transfer_closed_s[ti] : 1.0;
    if (rs[static_cast<std::size_t>(ri)].streaming) {
      const double ready = rs[static_cast<std::size_t>(ri)].stream_ready_s;
      if (ready > now) {
        events.push({ready, seq++, 3, ri});
      } else {
        stream_arrived(ri);
      }
      return;
    }
    const std::int32_t id = rs[static_cast<std::size_t>(ri)].inst;
    transfer_sum += now - rs[static_cast<std::size_t>(ri)].handoff_s;
    if (trace && window && transfer_start_s[ti] < window->end_s && now > window->begin_s) {
      trace->add_span({id, 1, "kv_transfer", "transfer", transfer_start_s[ti], now - transfer_start_s[ti],
                       {{"tokens", std::to_string(rs[static_cast<std::size_t>(ri)].kv_tokens)}}});
    }
    if (!distserve) return kv_arrived(ri);
    // DistServe: the decode instance migrates its accepted requests one after another and runs
    // again when the last has arrived.
    Inst& dst = insts[static_cast<std::size_t>(id)];
    dst.migration_head++;
    if (dst.migration_head < dst.migrations.size()) {
      start_flows(dst.migrations[dst.migration_head], id);
      return;
    }
    dst.migrations.clear();
    dst.migration_head = 0;
    dst.busy = false;
    dst.busy_s += now - dst.migration_begin;
    try_start(id);
    if (!dst.busy) admit_transfers(id);
  };

  std::size_t next = 0;
  while (true) {
    const double ta = next < n_req ? reqs[next].arrival_s : kInf;
    const double te = events.empty() ? kInf : events.top().t;
    if (flows && flows->busy()) {
      // The fabric's next transfer end, if it comes before the engine's next event.
      const TransferId t = flows->advance(std::min(ta, te));
      if (t >= 0) {
        now = std::max(now, flows->now_s());
        transfer_done(t);
        continue;
      }
    }
    if (ta == kInf && te == kInf) break;
    if (ta <= te) {
      now = ta;
      const auto ri = static_cast<std::int32_t>(next++);
      try_start(enqueue_entry(ri));
      continue;
    }
    const Event ev = events.top();
    events.pop();
    now = ev.t;
    if (ev.kind == 2) {  // DistServe: the decode instance's migrations are done
      Inst& in = insts[static_cast<std::size_t>(ev.a)];
      in.busy = false;
      try_start(ev.a);
      if (!in.busy) admit_transfers(ev.a);
      continue;
    }
    if (ev.kind == 1) {  // KV arrived on the decode instance
      kv_arrived(ev.a);
      continue;
    }
    if (ev.kind == 3) {  // a layer-wise KV stream is complete
      stream_arrived(ev.a);
      continue;
    }
    // Iteration end.
    const std::int32_t id = ev.a;
    Inst& in = insts[static_cast<std::size_t>(id)];
    const PoolPlan& plan = plan_of(in);
    const double start = in.iteration_start;
    if (trace && window && start < window->end_s && now > window->begin_s) {
      std::int64_t pre = 0, dec = 0;
      for (const auto& e : in.batch) (e.prefill ? pre : dec) += e.tokens;
      trace->add_span({id, 0, pre > 0 ? (dec > 0 ? "mixed" : "prefill") : "decode", "iteration", start, now - start,
                       {{"prefill_tokens", std::to_string(pre)}, {"decode_tokens", std::to_string(dec)},
                        {"sequences", std::to_string(in.batch.size())}}});
    }
    in.busy = false;
    bool removed = false;
    for (const auto& e : in.batch) {
      Req& r = rs[static_cast<std::size_t>(e.req)];
      if (r.phase == Phase::kWaiting || r.inst != id) continue;  // preempted meanwhile
      const ServeRequest& q = reqs[static_cast<std::size_t>(e.req)];
      std::int32_t produced = 0;
      if (e.prefill) {
        r.done += e.tokens;
        r.kv_tokens += e.tokens;
        if (r.done >= r.target) {
          produced = 1;
          if (r.preemptions == 0) cache_insert(in, static_cast<std::size_t>(e.req));
        }
      } else {
        produced = 1;
        if (plan.gamma > 0) {
          while (produced <= plan.gamma && uniform(rng) < plan.alpha) produced++;
        }
        r.kv_tokens += produced;
      }
      if (produced == 0) continue;
      if (r.first_token_s < 0) r.first_token_s = now;
      r.generated = std::min(q.output_tokens, r.generated + produced);
      if (r.generated >= q.output_tokens) {
        finish(in, e.req);
        removed = true;
      } else if (e.prefill) {
        if (in.kind == Kind::kPrefill && r.streaming) {  // layer-wise: the KV is on its way already
          Inst& dst = insts[static_cast<std::size_t>(r.stream_dst)];
          r.phase = Phase::kTransferring;
          r.src = id;
          r.inst = r.stream_dst;
          r.src_blocks = r.blocks;
          r.blocks = r.stream_blocks;
          r.stream_blocks = 0;
          r.handoff_s = now;
          dst.streams--;
          dst.running.push_back(e.req);
          in.outstanding--;
          transfers++;
          removed = true;
          if (r.stream_done) events.push({now, seq++, 3, e.req});  // arrives once this iteration is wrapped up
        } else if (in.kind == Kind::kPrefill) {  // hand off to a decode instance
          r.phase = Phase::kPending;
          r.src = id;
          removed = true;
          const auto dst = route(decode_insts, rr_decode, static_cast<std::size_t>(e.req));
          insts[static_cast<std::size_t>(dst)].outstanding++;
          in.outstanding--;
          insts[static_cast<std::size_t>(dst)].pending.push_back(e.req);
          admit_transfers(dst);
        } else {
          r.phase = Phase::kDecoding;
        }
      }
    }
    if (removed) {
      in.running.erase(std::remove_if(in.running.begin(), in.running.end(),
                                      [&](std::int32_t ri) {
                                        const Req& r = rs[static_cast<std::size_t>(ri)];
                                        // Handed off and already admitted (or streamed) by a
                                        // decode instance: no longer this instance's.
                                        return r.phase == Phase::kDone || r.phase == Phase::kPending ||
                                               r.phase == Phase::kDropped || r.inst != id;
                                      }),
                       in.running.end());
    }
    if (in.kind == Kind::kDecode) admit_transfers(id);
    try_start(id);
  }

  ServeOutcome out;
  out.makespan_s = now;
  out.preemptions = preemptions;
  out.kv_transfers = transfers;
  out.kv_transfer_s_mean = transfers > 0 ? transfer_sum / static_cast<double>(transfers) : 0;
  out.prefix_hit_share = prompt_tokens > 0 ? cached_tokens / prompt_tokens : 0;
  if (flows) {
    out.network = ServeNetworkMode::kFlows;
    out.kv_transfer_slowdown_mean =
        transfer_req.empty() ? 0 : slowdown_sum / static_cast<double>(transfer_req.size());
  }
  out.requests.resize(n_req);
  for (std::size_t i = 0; i < n_req; ++i) {
    const Req& r = rs[i];
    const ServeRequest& q = reqs[i];
    RequestOutcome& o = out.requests[i];
    o.arrival_s = q.arrival_s;
    o.input_tokens = q.input_tokens;
    o.output_tokens = q.output_tokens;
    o.cached_tokens = r.cached;
    o.preemptions = r.preemptions;
    o.finished = r.phase == Phase::kDone;
    if (!o.finished) continue;
    o.ttft_s = r.first_token_s - q.arrival_s;
    o.e2e_s = r.finish_s - q.arrival_s;
    o.tpot_s = q.output_tokens > 1 ? (r.finish_s - r.first_token_s) / (q.output_tokens - 1) : 0;
  }
  for (auto& in : insts) account(in);
  for (std::size_t pi = 0; pi < plans_.size(); ++pi) {
    const PoolPlan& plan = plans_[pi];
    const PoolSpec& p = d.pools[static_cast<std::size_t>(plan.pool)];
    PoolOutcome po;
    po.name = p.name;
    po.role = p.role;
    po.instances = plan.instances;
    po.gpus = p.gpus;
    po.kv_blocks_per_instance = plan.blocks;
    if (plan.measured) {
      const IterationCost& ic = *costs_[static_cast<std::size_t>(plan.cost)];
      if (plan.kind != Kind::kDecode) po.measured_fits.push_back(ic.measured_basis(ServePhase::kPrefill));
      if (plan.kind != Kind::kPrefill) po.measured_fits.push_back(ic.measured_basis(ServePhase::kDecode));
    }
    std::int64_t tokens = 0, afd_n = 0;
    double busy = 0, kv = 0, afd_c = 0, afd_e = 0;
    for (const auto& in : insts) {
      if (in.plan != static_cast<std::int32_t>(pi)) continue;
      busy += in.busy_s;
      kv += in.total_blocks > 0 ? in.kv_integral / static_cast<double>(in.total_blocks) : 0;
      po.kv_utilisation_peak = std::max(po.kv_utilisation_peak,
                                        in.total_blocks > 0 ? static_cast<double>(in.kv_peak) / in.total_blocks : 0.0);
      po.iterations += in.iterations;
      tokens += in.batch_tokens;
      afd_c += in.afd_closed_sum;
      afd_e += in.afd_event_sum;
      afd_n += in.afd_iterations;
    }
    const double span = std::max(now, 1e-12) * static_cast<double>(plan.instances);
    po.busy_share = busy / span;
    po.kv_utilisation_mean = kv / span;
    po.mean_batch_tokens = po.iterations > 0 ? static_cast<double>(tokens) / static_cast<double>(po.iterations) : 0;
    if (afd_n > 0) {
      po.afd_closed_form_s = afd_c / static_cast<double>(afd_n);
      po.afd_event_level_s = afd_e / static_cast<double>(afd_n);
    }
    out.pools.push_back(po);
  }
  out.gpus = d.total_gpus();
  if (trace) {
    for (std::size_t i = 0; i < insts.size(); ++i) {
      const PoolSpec& p = pool_of(insts[i]);
      trace->name_process(static_cast<std::int64_t>(i), fmt::format("{} instance {} ({})", p.name, i, to_string(p.role)));
      trace->name_thread(static_cast<std::int64_t>(i), 0, "iterations");
      trace->name_thread(static_cast<std::int64_t>(i), 1, "kv transfers in");
    }
  }
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return out;
}

}  // namespace clustersim::sim
