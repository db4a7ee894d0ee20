#include "models/planning/iteration_graph.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "models/lowering/gradient_buckets.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim {

namespace {

using Kind = IterationActivityKind;

class Builder {
 public:
  Builder(const Workload& w, const std::vector<StageTimes>& stages, const CostModel& costs, std::int64_t classes,
          double data_loading_s)
      : w_(w), stages_(stages), costs_(costs), l_(w.layout), data_loading_s_(data_loading_s) {
    g_.pp = l_.pp;
    g_.virtual_stages = l_.virtual_stages;
    g_.microbatches = l_.num_microbatches;
    g_.classes = classes;
  }

  IterationGraph build();

 private:
  std::int64_t p() const { return g_.pp; }
  std::int64_t v() const { return g_.virtual_stages; }
  std::int64_t m() const { return g_.microbatches; }
  std::size_t fb_index(std::int64_t cls, std::int64_t s, std::int64_t c, std::int64_t mb) const {
    return static_cast<std::size_t>(((cls * p() + s) * v() + c) * m() + mb);
  }
  double chunk_share(std::int64_t s, std::int64_t c) const { return pipeline_chunk_share(l_, s, c); }
  std::int32_t new_lane(std::int64_t cls, std::int64_t stage, std::int32_t stream) {
    g_.lanes.push_back({static_cast<std::int32_t>(cls), static_cast<std::int32_t>(stage), stream});
    lane_last_.push_back(-1);
    return static_cast<std::int32_t>(g_.lanes.size() - 1);
  }
  std::int32_t add(IterationActivity a, std::span<const std::int32_t> deps) {
    const auto id = static_cast<std::int32_t>(g_.activities.size());
    lane_prev_.push_back(lane_last_[static_cast<std::size_t>(a.lane)]);
    lane_last_[static_cast<std::size_t>(a.lane)] = id;
    g_.activities.push_back(a);
    for (std::int32_t d : deps) depend(d, id);
    return id;
  }
  void depend(std::int32_t before, std::int32_t after) { edges_.push_back({after, before}); }
  // An activity of class `cls` at stage `s` on `lane`.
  static IterationActivity at(Kind kind, std::int32_t lane, std::int64_t cls, std::int64_t s, double nominal_s,
                              std::string_view name) {
    IterationActivity a;
    a.kind = kind;
    a.lane = lane;
    a.cls = static_cast<std::int32_t>(cls);
    a.stage = static_cast<std::int32_t>(s);
    a.nominal_s = nominal_s;
    a.name = name;
    return a;
  }
  void finish_preds();
  // One DP collective of the stage's step op `op` taking `seconds` (none in a group of one).
  std::int32_t add_dp(std::int32_t lane, std::int64_t s, std::int64_t chunk, std::size_t op, double seconds,
                      std::span<const std::int32_t> deps);
  double dp_collective_s(const WorkOp& op, double bytes) const {
    return costs_.collective(op.collective, bytes, op.group_ranks, op.group_nodes).seconds * static_cast<double>(op.count);
  }
  void gathers_at_start();
  void stage_lane(std::int64_t cls, std::int64_t s);
  void wire_pipeline(std::int64_t cls, std::int64_t s);
  void step(std::int64_t s);

  const Workload& w_;
  const std::vector<StageTimes>& stages_;
  const CostModel& costs_;
  const ParallelLayout& l_;
  double data_loading_s_;
  IterationGraph g_;
  std::vector<std::int32_t> lane_last_, lane_prev_;
  std::vector<std::pair<std::int32_t, std::int32_t>> edges_;                // (after, before), in insertion order
  std::vector<std::int32_t> receive_;                                       // per fb_index: what a pass waits for
  std::vector<std::int32_t> compute_lane_, send_fwd_lane_, send_bwd_lane_, ready_lane_;  // per cell
  std::vector<std::int32_t> dp_lane_;                                       // per stage
  std::vector<std::vector<std::int32_t>> comm_sms_;                         // per stage, step op: SMs (-1: not priced)
  std::vector<std::int32_t> fwd_, bwd_, send_f_, send_b_;                    // per fb_index
  std::vector<std::int32_t> gather_;                                        // per s * v + c
  std::vector<std::int32_t> last_backward_;                                 // per cell
};

std::int32_t Builder::add_dp(std::int32_t lane, std::int64_t s, std::int64_t chunk, std::size_t op, double seconds,
                             std::span<const std::int32_t> deps) {
  const WorkOp& o = w_.stages[static_cast<std::size_t>(s)].step[op];
  IterationActivity a;
  a.kind = Kind::kDpCollective;
  a.lane = lane;
  a.stage = static_cast<std::int32_t>(s);
  a.chunk = static_cast<std::int32_t>(chunk);
  a.stream = kDpStream;
  a.dp_op = static_cast<std::int32_t>(op);
  // Every bucket of a step op holds the SMs of the op's collective: priced once per op.
  std::vector<std::int32_t>& sms = comm_sms_[static_cast<std::size_t>(s)];
  if (sms.size() <= op) sms.resize(op + 1, -1);
  if (sms[op] < 0) {
    sms[op] = costs_.collective_sms(o.collective, o.bytes, static_cast<int>(o.group_ranks), static_cast<int>(o.group_nodes));
  }
  a.comm_sms = sms[op];
  a.nominal_s = o.group_ranks < 2 ? 0 : seconds;
  a.name = o.name;
  return add(a, deps);
}

// Parameter gathers that overlap the forward (overlap_param_gather): the first chunk's at the
// start, each next one when the forward reaches the previous chunk (Megatron-LM's prefetch of
// the next bucket group); each chunk's first forward waits for its gather.
void Builder::gathers_at_start() {
  if (!w_.overlap_param_gather) return;
  bool any = false;
  for (const auto& st : w_.stages) {
    for (const auto& op : st.step) any = any || (op.cost == Cost::kDpComm && op.collective == CollectiveKind::kAllGather);
  }
  if (!any) return;
  gather_.assign(static_cast<std::size_t>(p() * v()), -1);
  for (std::int64_t s = 0; s < p(); ++s) {
    const auto& ops = w_.stages[static_cast<std::size_t>(s)].step;
    for (std::int64_t c = 0; c < v(); ++c) {
      const double share = v() > 1 ? chunk_share(s, c) : 1.0;
      const std::int32_t lane = dp_lane_[static_cast<std::size_t>(s)];
      std::int32_t last = -1;
      for (std::size_t k = 0; k < ops.size(); ++k) {
        if (ops[k].cost == Cost::kDpComm && ops[k].collective == CollectiveKind::kAllGather) {
          last = add_dp(lane, s, c, k, dp_collective_s(ops[k], ops[k].bytes * share), {});
        }
      }
      if (last < 0) {  // this stage has nothing to gather
        IterationActivity join;
        join.lane = lane;
        join.stage = static_cast<std::int32_t>(s);
        join.stream = kDpStream;
        last = add(join, {});
      }
      gather_[static_cast<std::size_t>(s * v() + c)] = last;
    }
  }
}

void Builder::stage_lane(std::int64_t cls, std::int64_t s) {
  const std::size_t cell = g_.cell(cls, s);
  const std::int32_t lane = compute_lane_[cell];
  const StageTimes& t = stages_[static_cast<std::size_t>(s)];
  std::vector<bool> first_forward_seen(static_cast<std::size_t>(v()), false);
  const double p2p_s = costs_.collective(CollectiveKind::kSendRecv, w_.p2p_bytes, 2, w_.p2p_crosses_nodes ? 2 : 1).seconds;
  // 1F1B blocks the compute stream on its sends (Megatron-LM's send_forward_recv_backward);
  // interleaving overlaps them unless overlap_p2p_comm is off.
  const bool blocking = v() == 1 || !w_.overlap_p2p_comm;
  if (data_loading_s_ > 0 && (s == 0 || s == p() - 1)) {  // tokens on the first stage, labels on the last
    add(at(Kind::kHost, lane, cls, s, data_loading_s_, "get_batch"), {});
  }
  for (const auto& [backward, cm] : pipeline_order(s, p(), v(), m())) {
    const auto [c, mb] = cm;
    IterationActivity a;
    a.kind = backward ? Kind::kBackward : Kind::kForward;
    a.lane = lane;
    a.cls = static_cast<std::int32_t>(cls);
    a.stage = static_cast<std::int32_t>(s);
    a.chunk = static_cast<std::int32_t>(c);
    a.mb = static_cast<std::int32_t>(mb);
    a.nominal_s = (backward ? t.backward_s : t.forward_s) * chunk_share(s, c);
    a.name = backward ? "backward" : "forward";
    const std::int32_t id = add(a, {});
    (backward ? bwd_ : fwd_)[fb_index(cls, s, c, mb)] = id;
    if (backward) last_backward_[cell] = id;
    if (!backward && !gather_.empty() && !first_forward_seen[static_cast<std::size_t>(c)]) {
      // The forward cannot finish before its chunk's parameters are gathered.
      first_forward_seen[static_cast<std::size_t>(c)] = true;
      IterationActivity join;
      join.lane = lane;
      join.cls = static_cast<std::int32_t>(cls);
      join.stage = static_cast<std::int32_t>(s);
      join.name = "wait_param_gather";
      const std::int32_t deps[] = {gather_[static_cast<std::size_t>(s * v() + c)]};
      const std::int32_t waited = add(join, deps);
      // Megatron-LM dispatches the next chunk's gather when this one is waited for (one ahead).
      if (c + 1 < v()) depend(waited, gather_[static_cast<std::size_t>(s * v() + c + 1)]);
    }
    // The neighbouring virtual stage this op sends to.
    std::int64_t ns = -1, nc = c;
    if (!backward) {
      if (s + 1 < p()) {
        ns = s + 1;
      } else if (c + 1 < v()) {
        ns = 0, nc = c + 1;
      }
    } else if (s > 0) {
      ns = s - 1;
    } else if (c > 0) {
      ns = p() - 1, nc = c - 1;
    }
    if (ns < 0) continue;
    IterationActivity send;
    send.kind = Kind::kSend;
    send.lane = blocking ? lane : (backward ? send_bwd_lane_[cell] : send_fwd_lane_[cell]);
    send.cls = static_cast<std::int32_t>(cls);
    send.stage = static_cast<std::int32_t>(s);
    send.chunk = static_cast<std::int32_t>(nc);
    send.mb = static_cast<std::int32_t>(mb);
    send.to_stage = static_cast<std::int32_t>(ns);
    send.stream = blocking ? kComputeStream : (backward ? kSendBackwardStream : kSendForwardStream);
    send.nominal_s = p2p_s;
    send.name = backward ? "send_backward" : "send_forward";
    const std::int32_t deps[] = {id};
    (backward ? send_b_ : send_f_)[fb_index(cls, ns, nc, mb)] = add(send, deps);  // indexed by the receiver
  }
}

void Builder::wire_pipeline(std::int64_t cls, std::int64_t s) {
  for (std::int64_t c = 0; c < v(); ++c) {
    for (std::int64_t mb = 0; mb < m(); ++mb) {
      const std::size_t i = fb_index(cls, s, c, mb);
      if (send_f_[i] >= 0) {
        depend(send_f_[i], fwd_[i]);
        g_.activities[static_cast<std::size_t>(send_f_[i])].peer = fwd_[i];
      }
      if (send_b_[i] >= 0) {
        depend(send_b_[i], bwd_[i]);
        receive_[static_cast<std::size_t>(bwd_[i])] = send_b_[i];
        g_.activities[static_cast<std::size_t>(send_b_[i])].peer = bwd_[i];
      } else if (s == p() - 1 && c == v() - 1) {
        depend(fwd_[i], bwd_[i]);  // the loss: backward after its own forward
        receive_[static_cast<std::size_t>(bwd_[i])] = fwd_[i];
      }
    }
  }
}

// Gradient reduction per chunk and bucket (when overlapped: each bucket once the chunk's last
// backward has passed its parameters on every replica class), the optimizer on every class,
// then the parameter gather unless it overlaps the next step's forward.
void Builder::step(std::int64_t s) {
  const auto& ops = w_.stages[static_cast<std::size_t>(s)].step;
  const std::int32_t lane = dp_lane_[static_cast<std::size_t>(s)];
  const bool chunked = w_.overlap_grad_reduce && v() > 1;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const WorkOp& op = ops[k];
    if (op.cost != Cost::kDpComm || op.collective == CollectiveKind::kAllGather) continue;
    // Megatron-LM's buckets: ddp_bucket_size on the first stage, one per model chunk elsewhere.
    const double bucket_parameters = s == 0 ? w_.grad_bucket_parameters : w_.overlap_grad_reduce ? op.parameters / static_cast<double>(v()) : 0;
    for (std::int64_t chunk = chunked ? v() - 1 : 0; chunk >= 0; --chunk) {
      const double share = chunked ? chunk_share(s, chunk) : 1.0;
      const std::vector<Bucket> buckets = split_into_buckets(
          BucketUse::kReduction, op.parameters * share, op.bytes * share, bucket_parameters,
          [&](double bytes) { return dp_collective_s(op, bytes); });
      // When each bucket's gradients are ready on each class: after the whole backward, or
      // (overlap_grad_reduce) when the chunk's last backward has passed the bucket's parameters.
      std::vector<std::vector<std::int32_t>> ready(buckets.size());
      for (std::int64_t cls = 0; cls < g_.classes; ++cls) {
        const std::size_t cell = g_.cell(cls, s);
        if (!w_.overlap_grad_reduce) {
          for (auto& r : ready) r.push_back(last_backward_[cell]);
          continue;
        }
        std::int32_t last = -1;
        for (std::int64_t c = chunked ? chunk : 0; c <= (chunked ? chunk : v() - 1); ++c) {
          last = std::max(last, bwd_[fb_index(cls, s, c, m() - 1)]);
        }
        std::vector<std::int32_t> starts;
        if (lane_prev_[static_cast<std::size_t>(last)] >= 0) starts.push_back(lane_prev_[static_cast<std::size_t>(last)]);
        if (receive_[static_cast<std::size_t>(last)] >= 0) starts.push_back(receive_[static_cast<std::size_t>(last)]);
        const double backward_s = g_.activities[static_cast<std::size_t>(last)].nominal_s;
        double at = 0;
        for (std::size_t j = 0; j < buckets.size(); ++j) {
          IterationActivity wait;
          wait.lane = ready_lane_[cell];
          wait.cls = static_cast<std::int32_t>(cls);
          wait.stage = static_cast<std::int32_t>(s);
          wait.stream = kDpStream;
          wait.nominal_s = (buckets[j].at - at) * backward_s;
          wait.name = "gradients_ready";
          at = buckets[j].at;
          ready[j].push_back(add(wait, j == 0 ? std::span<const std::int32_t>(starts) : std::span<const std::int32_t>{}));
        }
      }
      for (std::size_t j = 0; j < buckets.size(); ++j) add_dp(lane, s, chunk, k, buckets[j].seconds, ready[j]);
    }
  }
  const std::int32_t reduced = lane_last_[static_cast<std::size_t>(lane)];
  std::vector<std::int32_t> optimizers;
  for (std::int64_t cls = 0; cls < g_.classes; ++cls) {
    const double clip_s = stages_[static_cast<std::size_t>(s)].step_fixed_s;
    if (clip_s > 0) {  // gradient clipping: the norm of the reduced gradients, before the step
      std::vector<std::int32_t> deps;
      if (reduced >= 0) deps.push_back(reduced);
      add(at(Kind::kHost, compute_lane_[g_.cell(cls, s)], cls, s, clip_s, "clip_grad"), deps);
    }
    std::vector<std::int32_t> deps;
    if (reduced >= 0) deps.push_back(reduced);
    optimizers.push_back(add(at(Kind::kOptimizer, compute_lane_[g_.cell(cls, s)], cls, s,
                                stages_[static_cast<std::size_t>(s)].optimizer_s, "optimizer"),
                             deps));
  }
  if (!w_.overlap_param_gather) {
    for (std::size_t k = 0; k < ops.size(); ++k) {
      if (ops[k].cost == Cost::kDpComm && ops[k].collective == CollectiveKind::kAllGather) add_dp(lane, s, 0, k, dp_collective_s(ops[k], ops[k].bytes), optimizers);
    }
  }
}

IterationGraph Builder::build() {
  const std::size_t cells = static_cast<std::size_t>(g_.classes * p());
  const std::size_t ops = cells * static_cast<std::size_t>(v() * m());
  g_.activities.reserve(4 * ops + 64);
  lane_prev_.reserve(4 * ops + 64);
  edges_.reserve(4 * ops + 64);
  fwd_.assign(ops, -1), bwd_.assign(ops, -1), send_f_.assign(ops, -1), send_b_.assign(ops, -1);
  last_backward_.assign(cells, -1);
  for (std::int64_t cls = 0; cls < g_.classes; ++cls) {
    for (std::int64_t s = 0; s < p(); ++s) {
      compute_lane_.push_back(new_lane(cls, s, kComputeStream));
      send_fwd_lane_.push_back(v() > 1 ? new_lane(cls, s, kSendForwardStream) : -1);
      send_bwd_lane_.push_back(v() > 1 ? new_lane(cls, s, kSendBackwardStream) : -1);
      ready_lane_.push_back(new_lane(cls, s, kDpStream));
    }
  }
  for (std::int64_t s = 0; s < p(); ++s) dp_lane_.push_back(new_lane(-1, s, kDpStream));
  comm_sms_.assign(static_cast<std::size_t>(p()), {});
  gathers_at_start();
  for (std::int64_t cls = 0; cls < g_.classes; ++cls) {
    for (std::int64_t s = 0; s < p(); ++s) stage_lane(cls, s);
  }
  receive_.assign(g_.activities.size(), -1);
  for (std::int64_t cls = 0; cls < g_.classes; ++cls) {
    for (std::int64_t s = 0; s < p(); ++s) wire_pipeline(cls, s);
  }
  for (std::int64_t s = 0; s < p(); ++s) step(s);
  std::vector<std::int32_t> tails;
  for (std::int32_t last : lane_last_) {
    if (last >= 0) tails.push_back(last);
  }
  IterationActivity end;
  end.lane = new_lane(-1, -1, kComputeStream);
  end.name = "step_end";
  g_.end = add(end, tails);
  finish_preds();
  return std::move(g_);
}

// Predecessors as one flat array: the lane's previous activity first, then the dependencies in
// the order they were added.
void Builder::finish_preds() {
  const std::size_t n = g_.activities.size();
  g_.pred_begin.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) g_.pred_begin[i + 1] = lane_prev_[i] >= 0 ? 1 : 0;
  for (const auto& [after, before] : edges_) ++g_.pred_begin[static_cast<std::size_t>(after) + 1];
  for (std::size_t i = 0; i < n; ++i) g_.pred_begin[i + 1] += g_.pred_begin[i];
  g_.pred.resize(static_cast<std::size_t>(g_.pred_begin[n]));
  std::vector<std::int32_t> fill(g_.pred_begin.begin(), g_.pred_begin.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    if (lane_prev_[i] >= 0) g_.pred[static_cast<std::size_t>(fill[i]++)] = lane_prev_[i];
  }
  for (const auto& [after, before] : edges_) g_.pred[static_cast<std::size_t>(fill[static_cast<std::size_t>(after)]++)] = before;
  // A topological order (Kahn), once: timing the graph is then one pass.
  std::vector<std::int32_t> pending(n), succ_begin(n + 1, 0), succs(g_.pred.size());
  for (std::size_t i = 0; i < n; ++i) {
    pending[i] = g_.pred_begin[i + 1] - g_.pred_begin[i];
    for (std::int32_t p : g_.preds(static_cast<std::int32_t>(i))) ++succ_begin[static_cast<std::size_t>(p) + 1];
  }
  for (std::size_t i = 0; i < n; ++i) succ_begin[i + 1] += succ_begin[i];
  std::vector<std::int32_t> next(succ_begin.begin(), succ_begin.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::int32_t p : g_.preds(static_cast<std::int32_t>(i))) {
      succs[static_cast<std::size_t>(next[static_cast<std::size_t>(p)]++)] = static_cast<std::int32_t>(i);
    }
  }
  g_.order.clear();
  g_.order.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) g_.order.push_back(static_cast<std::int32_t>(i));
  }
  for (std::size_t k = 0; k < g_.order.size(); ++k) {
    const auto i = static_cast<std::size_t>(g_.order[k]);
    for (std::int32_t j = succ_begin[i]; j < succ_begin[i + 1]; ++j) {
      const auto s = static_cast<std::size_t>(succs[static_cast<std::size_t>(j)]);
      if (--pending[s] == 0) g_.order.push_back(static_cast<std::int32_t>(s));
    }
  }
  if (g_.order.size() != n) throw std::logic_error("the iteration graph has a cycle");
}

}  // namespace

std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> pipeline_order(std::int64_t s, std::int64_t p,
                                                                                  std::int64_t v, std::int64_t m) {
  std::vector<std::pair<std::int64_t, std::int64_t>> fo, bo;
  for (std::int64_t start = 0; start < m; start += p) {
    for (std::int64_t c = 0; c < v; ++c) {
      for (std::int64_t mb = start; mb < std::min(start + p, m); ++mb) {
        fo.emplace_back(c, mb);
        bo.emplace_back(v - 1 - c, mb);
      }
    }
  }
  const auto total = static_cast<std::int64_t>(fo.size());
  const std::int64_t warm = v == 1 ? std::min(p - s - 1, total) : std::min((p - s - 1) * 2 + (v - 1) * p, total);
  std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> order;
  order.reserve(static_cast<std::size_t>(2 * total));
  for (std::int64_t k = 0; k < warm; ++k) order.push_back({false, fo[static_cast<std::size_t>(k)]});
  for (std::int64_t k = 0; k < total - warm; ++k) {
    order.push_back({false, fo[static_cast<std::size_t>(warm + k)]});
    order.push_back({true, bo[static_cast<std::size_t>(k)]});
  }
  for (std::int64_t k = total - warm; k < total; ++k) order.push_back({true, bo[static_cast<std::size_t>(k)]});
  return order;
}

double pipeline_chunk_share(const ParallelLayout& l, std::int64_t s, std::int64_t c) {
  const auto r = static_cast<std::size_t>(s);
  const double layers = r < l.chunks.size() ? static_cast<double>(l.layers_on_rank(s)) : 0.0;
  return layers > 0 ? static_cast<double>(l.chunks[r][static_cast<std::size_t>(c)].num_layers) / layers
                    : 1.0 / static_cast<double>(l.virtual_stages);
}

IterationGraph build_iteration_graph(const Workload& workload, const std::vector<StageTimes>& stages,
                                     const CostModel& costs, std::int64_t classes, double data_loading_s) {
  if (stages.size() != workload.stages.size()) throw std::invalid_argument("stage times do not belong to the workload");
  return Builder(workload, stages, costs, classes, data_loading_s).build();
}

std::vector<ActivitySpan> evaluate_iteration(const IterationGraph& g, std::span<const double> seconds) {
  std::vector<ActivitySpan> span(g.activities.size());
  for (std::int32_t id : g.order) {
    const auto i = static_cast<std::size_t>(id);
    double start = 0;
    for (std::int32_t p : g.preds(id)) start = std::max(start, span[static_cast<std::size_t>(p)].end_s);
    span[i] = {start, start + (seconds.empty() ? g.activities[i].nominal_s : seconds[i])};
  }
  return span;
}

}  // namespace clustersim

namespace clustersim {

std::vector<double> shared_nic_extra_s(const IterationGraph& g, std::span<const ActivitySpan> spans) {
  const std::size_t n = g.activities.size();
  std::vector<double> extra_s(n, 0.0);
  // Per stage, its DP collectives in time order (they run one after another on the stage's DP
  // lane, and a lane's activities are in lane order).
  std::vector<std::vector<ActivitySpan>> dp(static_cast<std::size_t>(g.pp));
  std::vector<std::vector<std::size_t>> dp_id(static_cast<std::size_t>(g.pp));
  for (std::size_t i = 0; i < n; ++i) {
    const IterationActivity& a = g.activities[i];
    if (a.kind != IterationActivityKind::kDpCollective || spans[i].end_s <= spans[i].start_s) continue;
    dp[static_cast<std::size_t>(a.stage)].push_back(spans[i]);
    dp_id[static_cast<std::size_t>(a.stage)].push_back(i);
  }
  // Each pipeline transfer: stretched by its overlap with the DP collectives of the stage it
  // leaves or enters (the longer), and each DP collective by the transfers it overlaps (their
  // union: transfers in both directions may run at once).
  std::vector<std::pair<std::size_t, ActivitySpan>> pieces;  // (DP collective, a transfer's overlap with it)
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const IterationActivity& a = g.activities[i];
    const ActivitySpan t = spans[i];
    if (a.kind != IterationActivityKind::kSend || a.cls != 0 || t.end_s <= t.start_s) continue;
    for (const std::int32_t stage : {a.stage, a.to_stage}) {
      const auto& busy = dp[static_cast<std::size_t>(stage)];
      auto it = std::lower_bound(busy.begin(), busy.end(), t.start_s, [](const ActivitySpan& x, double v) { return x.end_s <= v; });
      double covered = 0;
      for (; it != busy.end() && it->start_s < t.end_s; ++it) {
        const ActivitySpan clip{std::max(t.start_s, it->start_s), std::min(t.end_s, it->end_s)};
        covered += clip.end_s - clip.start_s;
        pieces.emplace_back(dp_id[static_cast<std::size_t>(stage)][static_cast<std::size_t>(it - busy.begin())], clip);
      }
      extra_s[i] = std::max(extra_s[i], covered);
      any = any || covered > 0;
      if (a.to_stage == a.stage) break;
    }
  }
  if (!any) return extra_s;
  std::sort(pieces.begin(), pieces.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first < y.first : x.second.start_s < y.second.start_s;
  });
  double end = -std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    const auto& [i, x] = pieces[k];
    if (k == 0 || pieces[k - 1].first != i) end = -std::numeric_limits<double>::infinity();
    extra_s[i] += std::max(0.0, x.end_s - std::max(x.start_s, end));
    end = std::max(end, x.end_s);
  }
  return extra_s;
}

std::vector<double> interference_extra_s(const IterationGraph& g, std::span<const ActivitySpan> spans,
                                         std::int64_t sm_count) {
  const std::size_t n = g.activities.size();
  std::vector<double> extra(n, 0.0);
  // Per stage, its DP collectives (one after another on the stage's DP lane) that hold SMs.
  std::vector<std::vector<std::size_t>> dp(static_cast<std::size_t>(g.pp));
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const IterationActivity& a = g.activities[i];
    if (a.kind != IterationActivityKind::kDpCollective || a.comm_sms <= 0 || a.comm_sms >= sm_count) continue;
    if (spans[i].end_s <= spans[i].start_s) continue;
    dp[static_cast<std::size_t>(a.stage)].push_back(i);
    any = true;
  }
  if (!any) return extra;
  for (std::size_t i = 0; i < n; ++i) {
    const IterationActivity& a = g.activities[i];
    if (a.kind != IterationActivityKind::kForward && a.kind != IterationActivityKind::kBackward) continue;
    const ActivitySpan t = spans[i];
    const auto& busy = dp[static_cast<std::size_t>(a.stage)];
    auto it = std::lower_bound(busy.begin(), busy.end(), t.start_s,
                               [&](std::size_t j, double v) { return spans[j].end_s <= v; });
    for (; it != busy.end() && spans[*it].start_s < t.end_s; ++it) {
      const double overlap = std::min(t.end_s, spans[*it].end_s) - std::max(t.start_s, spans[*it].start_s);
      const double c = g.activities[*it].comm_sms;
      if (overlap > 0) extra[i] += overlap * c / (static_cast<double>(sm_count) - c);
    }
  }
  return extra;
}

}  // namespace clustersim
