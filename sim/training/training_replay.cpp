#include "sim/training/training_replay.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "traces/chrome_trace_writer.hpp"
#include "sim/platform/network_simulation.hpp"
#include "traces/trace_file_writer.hpp"

namespace clustersim::sim {

namespace {

enum class Kind : std::uint8_t { kForward, kBackward, kSend, kDpCollective, kOptimizer, kJoin };
// Streams of a rank, the trace's tid.
enum Stream : std::int32_t { kComputeStream = 0, kSendForward = 1, kSendBackward = 2, kDpStream = 3 };

// What the replay knows about each activity it added (indexed by ActivityId).
struct Meta {
  Kind kind = Kind::kJoin;
  std::int32_t cls = -1;    // replica class; -1: the stage's DP lane
  std::int32_t stage = -1;
  std::int32_t chunk = 0;
  std::int32_t mb = 0;
  std::int32_t stream = kComputeStream;
  double nominal_s = 0;     // alone on the platform, at nominal speed
  std::int64_t src = -1, dst = -1;  // transfers
  std::int32_t ring = -1;   // DP collectives: index into Replay::rings_
  ActivityId peer = -1;     // sends: the activity that receives
  std::string_view name;
};

struct Ring {
  std::vector<std::int64_t> group;
  RingCollective kind = RingCollective::kAllReduce;
};

struct CellSlow {
  double factor = 1.0;
  std::int64_t rank = 0;  // the slowest rank of the cell
  std::string cause;
};

RingCollective ring_kind(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::kAllGather: return RingCollective::kAllGather;
    case CollectiveKind::kReduceScatter: return RingCollective::kReduceScatter;
    default: return RingCollective::kAllReduce;
  }
}

struct Segment {
  std::int32_t cell = -1;  // cls * pp + stage for compute activities, -1 otherwise
  std::string cause, detail;
  double seconds = 0;
};

class Replay {
 public:
  Replay(const Workload& w, const TrainingEstimate& e, const CostModel& costs, const ClusterSpec& cluster,
         const ReplayOptions& o)
      : w_(w), e_(e), costs_(costs), o_(o), l_(w.layout), sim_(cluster, w.layout.world) {
    p_ = l_.pp;
    v_ = l_.virtual_stages;
    m_ = l_.num_microbatches;
  }

  ReplayResult run();

 private:
  std::int64_t rank_of(std::int64_t cp, std::int64_t d, std::int64_t s) const {
    return l_.tp * (cp + l_.cp * (d + l_.dp * s));
  }
  std::int64_t rep(std::int64_t cls, std::int64_t s) const { return rank_of(0, replicas_[static_cast<std::size_t>(cls)], s); }
  std::size_t fb_index(std::int64_t cls, std::int64_t s, std::int64_t c, std::int64_t mb) const {
    return static_cast<std::size_t>(((cls * p_ + s) * v_ + c) * m_ + mb);
  }

  void choose_replicas();
  void apply_perturbation();
  ActivityId record(ActivityId id, LaneId lane, Meta meta, std::span<const ActivityId> deps);
  void depend(ActivityId before, ActivityId after);
  double transfer_bytes(std::int64_t src, std::int64_t dst, double seconds) const;
  double ring_bytes(const Ring& ring, double seconds) const;
  double price_collective(const WorkOp& op, double share) const;
  std::vector<std::int64_t> group_of(const WorkOp& op, std::int64_t s) const;
  ActivityId add_ring(LaneId lane, const WorkOp& op, std::int64_t s, std::int64_t chunk, double share,
                      std::span<const ActivityId> deps);
  void build_stage_lanes(std::int64_t cls, std::int64_t s);
  void wire_pipeline(std::int64_t cls, std::int64_t s);
  void build_step(std::int64_t s);
  std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> schedule(std::int64_t s) const;
  std::string slow_link_on(std::span<const std::int32_t> links, double window) const;
  std::vector<std::int32_t> links_of(const Meta& m) const;
  void critical_path(ReplayResult& r);
  void write_trace(ReplayResult& r);

  const Workload& w_;
  const TrainingEstimate& e_;
  const CostModel& costs_;
  const ReplayOptions& o_;
  const ParallelLayout& l_;
  NetworkSimulation sim_;
  std::int64_t p_ = 1, v_ = 1, m_ = 1;

  std::vector<std::int64_t> replicas_;       // DP replica of each class; class 0 nominal unless full
  std::map<std::int64_t, CellSlow> slow_;    // (stage * dp + replica) -> slowdown
  std::set<std::int32_t> perturbed_links_;

  std::vector<Meta> meta_;
  std::vector<std::vector<ActivityId>> preds_;
  std::vector<ActivityId> lane_last_;
  std::vector<LaneId> compute_lane_, send_fwd_lane_, send_bwd_lane_;  // per cls * pp + s
  std::vector<LaneId> dp_lane_;                                      // per stage
  std::vector<ActivityId> fwd_, bwd_, send_f_, send_b_;               // per fb_index
  std::vector<ActivityId> gather_;                                   // per s * v + c, at the start
  std::vector<ActivityId> last_backward_;                            // per cls * pp + s
  std::vector<ActivityId> optimizer_;                                // per cls * pp + s
  std::vector<Ring> rings_;
  ActivityId end_ = -1;
};

void Replay::choose_replicas() {
  std::set<std::int64_t> explicit_replicas;
  const std::int64_t per_stage = l_.tp * l_.cp * l_.dp;
  for (const auto& sd : o_.perturbation.slowdowns) {
    if (sd.rank < 0 || sd.rank >= l_.world) {
      throw std::invalid_argument(fmt::format("rank {} outside 0..{}", sd.rank, l_.world - 1));
    }
    const std::int64_t s = sd.rank / per_stage, d = sd.rank % per_stage / (l_.tp * l_.cp);
    CellSlow& c = slow_[s * l_.dp + d];
    if (sd.factor > c.factor) c = {sd.factor, sd.rank, sd.cause};
    if (sd.factor != 1.0) explicit_replicas.insert(d);
  }
  // A perturbed NIC or NVLink link: the replicas whose ranks sit on its node run explicitly, so
  // their pipeline transfers cross it.
  const RailFabric& f = sim_.fabric();
  for (const auto& lc : o_.perturbation.links) {
    const std::int32_t id = f.find_link(lc.link);
    if (id < 0) throw std::invalid_argument(fmt::format("unknown link \"{}\"", lc.link));
    perturbed_links_.insert(id);
    const FabricLink link = f.link(id);
    std::int64_t node = -1;
    if (link.kind == FabricLinkKind::kNvlinkUp || link.kind == FabricLinkKind::kNvlinkDown) {
      node = f.node_of(link.index);
    } else if (link.kind == FabricLinkKind::kNicUp || link.kind == FabricLinkKind::kNicDown) {
      node = link.index / f.rail_count();
    }
    if (node < 0) continue;
    for (std::int64_t g = node * f.gpus_per_node(); g < std::min(l_.world, (node + 1) * f.gpus_per_node()); ++g) {
      explicit_replicas.insert(g % per_stage / (l_.tp * l_.cp));
    }
  }
  if (o_.full) {
    for (std::int64_t d = 0; d < l_.dp; ++d) replicas_.push_back(d);
    return;
  }
  for (std::int64_t d = 0; d < l_.dp; ++d) {
    if (!explicit_replicas.count(d)) {
      replicas_.push_back(d);  // the nominal class: the first replica nothing perturbs
      break;
    }
  }
  for (std::int64_t d : explicit_replicas) replicas_.push_back(d);
}

void Replay::apply_perturbation() {
  for (const auto& [cell, slow] : slow_) {
    const std::int64_t s = cell / l_.dp, d = cell % l_.dp;
    sim_.set_rank_slowdown(rank_of(0, d, s), slow.factor);
  }
  for (const auto& lc : o_.perturbation.links) {
    if (lc.failed) {
      sim_.fail_link(lc.link);
    } else {
      sim_.scale_link_bandwidth(lc.link, lc.bandwidth_factor, lc.at_s);
    }
  }
  for (const auto& b : o_.perturbation.background) sim_.add_background_flow({b.src, b.dst, b.bytes}, b.start_s);
}

ActivityId Replay::record(ActivityId id, LaneId lane, Meta meta, std::span<const ActivityId> deps) {
  if (static_cast<std::size_t>(id) != meta_.size()) throw std::logic_error("activity ids out of order");
  meta_.push_back(meta);
  std::vector<ActivityId> preds;
  if (lane_last_[static_cast<std::size_t>(lane)] >= 0) preds.push_back(lane_last_[static_cast<std::size_t>(lane)]);
  preds.insert(preds.end(), deps.begin(), deps.end());
  preds_.push_back(std::move(preds));
  lane_last_[static_cast<std::size_t>(lane)] = id;
  return id;
}

void Replay::depend(ActivityId before, ActivityId after) {
  sim_.add_dependency(before, after);
  preds_[static_cast<std::size_t>(after)].push_back(before);
}

// Bytes of one flow src -> dst that take `seconds` alone on the platform: the route's latency
// plus bytes over its narrowest link.
double Replay::transfer_bytes(std::int64_t src, std::int64_t dst, double seconds) const {
  const RailFabric& f = sim_.fabric();
  const FabricRoute route = f.route(src, dst);
  double bw = std::numeric_limits<double>::infinity();
  for (std::int32_t i = 0; i < route.size; ++i) {
    const FabricLink link = f.link(route.links[static_cast<std::size_t>(i)]);
    if (link.shared) bw = std::min(bw, link.bandwidth_bytes_per_s);
  }
  if (!std::isfinite(bw)) bw = f.nic_bandwidth_bytes_per_s();
  return std::max(1.0, (seconds - route.latency_s) * bw);
}

// Bytes per rank of an aggregated ring that takes `seconds` alone on the platform:
// steps * alpha + hop bytes / narrowest hop bandwidth (collective_flows.hpp).
double Replay::ring_bytes(const Ring& ring, double seconds) const {
  const RailFabric& f = sim_.fabric();
  const auto g = static_cast<std::int64_t>(ring.group.size());
  double alpha = 0, bw = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < ring.group.size(); ++i) {
    const FabricRoute route = f.route(ring.group[i], ring.group[(i + 1) % ring.group.size()]);
    alpha = std::max(alpha, route.latency_s);
    for (std::int32_t k = 0; k < route.size; ++k) {
      const FabricLink link = f.link(route.links[static_cast<std::size_t>(k)]);
      if (link.shared) bw = std::min(bw, link.bandwidth_bytes_per_s);
    }
  }
  const double steps = static_cast<double>(ring_steps(ring.kind, g));
  const double hop_bytes = std::max(1.0, (seconds - steps * alpha) * bw);
  return hop_bytes * static_cast<double>(g) / steps;
}

double Replay::price_collective(const WorkOp& op, double share) const {
  return costs_.collective(op.collective, op.bytes * share, op.group_ranks, op.group_nodes).seconds *
         static_cast<double>(op.count);
}

// The DP (or expert-DP) group of stage s on rail 0, in rank order.
std::vector<std::int64_t> Replay::group_of(const WorkOp& op, std::int64_t s) const {
  std::vector<std::int64_t> g;
  if (op.group == Group::kExpertDp) {
    const std::int64_t base = rank_of(0, 0, s), stride = l_.ep * l_.etp;
    for (std::int64_t i = 0; i < l_.expert_dp; ++i) g.push_back(base + i * stride);
  } else {
    for (std::int64_t d = 0; d < l_.dp; ++d) {
      for (std::int64_t cp = 0; cp < l_.cp; ++cp) g.push_back(rank_of(cp, d, s));
    }
  }
  return g;
}

ActivityId Replay::add_ring(LaneId lane, const WorkOp& op, std::int64_t s, std::int64_t chunk, double share,
                            std::span<const ActivityId> deps) {
  Ring ring{group_of(op, s), ring_kind(op.collective)};
  const double seconds = price_collective(op, share);
  Meta meta;
  meta.kind = Kind::kDpCollective;
  meta.stage = static_cast<std::int32_t>(s);
  meta.chunk = static_cast<std::int32_t>(chunk);
  meta.stream = kDpStream;
  meta.nominal_s = ring.group.size() < 2 ? 0 : seconds;
  meta.name = op.name;
  meta.ring = static_cast<std::int32_t>(rings_.size());
  const double bytes = ring.group.size() < 2 ? 0 : ring_bytes(ring, seconds);
  const ActivityId id = sim_.add_ring_collective(lane, ring.kind, ring.group, bytes, deps);
  rings_.push_back(std::move(ring));
  return record(id, lane, meta, deps);
}

// The stage's compute-stream order: (backward?, (chunk, micro-batch)). 1F1B: p - s - 1 warm-up
// forwards, then one forward one backward, then the cool-down backwards. Interleaved
// (Megatron): micro-batches in groups of p, chunk by chunk; (p - s - 1) * 2 + (v - 1) * p
// warm-up forwards.
std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> Replay::schedule(std::int64_t s) const {
  std::vector<std::pair<std::int64_t, std::int64_t>> fo, bo;
  for (std::int64_t start = 0; start < m_; start += p_) {
    for (std::int64_t c = 0; c < v_; ++c) {
      for (std::int64_t mb = start; mb < std::min(start + p_, m_); ++mb) {
        fo.emplace_back(c, mb);
        bo.emplace_back(v_ - 1 - c, mb);
      }
    }
  }
  const auto total = static_cast<std::int64_t>(fo.size());
  const std::int64_t warm = v_ == 1 ? std::min(p_ - s - 1, total) : std::min((p_ - s - 1) * 2 + (v_ - 1) * p_, total);
  std::vector<std::pair<bool, std::pair<std::int64_t, std::int64_t>>> order;
  for (std::int64_t k = 0; k < warm; ++k) order.push_back({false, fo[static_cast<std::size_t>(k)]});
  for (std::int64_t k = 0; k < total - warm; ++k) {
    order.push_back({false, fo[static_cast<std::size_t>(warm + k)]});
    order.push_back({true, bo[static_cast<std::size_t>(k)]});
  }
  for (std::int64_t k = total - warm; k < total; ++k) order.push_back({true, bo[static_cast<std::size_t>(k)]});
  return order;
}

void Replay::build_stage_lanes(std::int64_t cls, std::int64_t s) {
  const std::size_t cell = static_cast<std::size_t>(cls * p_ + s);
  const LaneId lane = compute_lane_[cell];
  const std::int64_t src = rep(cls, s);
  const StageTimes& t = e_.stages[static_cast<std::size_t>(s)];
  const double layers = static_cast<double>(l_.layers_on_rank(s));
  const bool gather_at_start = !gather_.empty();
  std::vector<bool> first_forward_seen(static_cast<std::size_t>(v_), false);
  for (const auto& [backward, cm] : schedule(s)) {
    const auto [c, mb] = cm;
    const double share =
        layers > 0 ? static_cast<double>(l_.chunks[static_cast<std::size_t>(s)][static_cast<std::size_t>(c)].num_layers) / layers
                   : 1.0 / static_cast<double>(v_);
    Meta meta;
    meta.kind = backward ? Kind::kBackward : Kind::kForward;
    meta.cls = static_cast<std::int32_t>(cls);
    meta.stage = static_cast<std::int32_t>(s);
    meta.chunk = static_cast<std::int32_t>(c);
    meta.mb = static_cast<std::int32_t>(mb);
    meta.nominal_s = (backward ? t.backward_s : t.forward_s) * share;
    meta.name = backward ? "backward" : "forward";
    const ActivityId id = record(sim_.add_compute(lane, src, meta.nominal_s), lane, meta, {});
    (backward ? bwd_ : fwd_)[fb_index(cls, s, c, mb)] = id;
    if (backward) last_backward_[cell] = id;
    if (!backward && gather_at_start && !first_forward_seen[static_cast<std::size_t>(c)]) {
      // The forward cannot finish before its chunk's parameters are gathered.
      first_forward_seen[static_cast<std::size_t>(c)] = true;
      const ActivityId g = gather_[static_cast<std::size_t>(s * v_ + c)];
      Meta join;
      join.cls = static_cast<std::int32_t>(cls);
      join.stage = static_cast<std::int32_t>(s);
      join.name = "wait_param_gather";
      const ActivityId deps[] = {g};
      record(sim_.add_delay(lane, 0.0, deps), lane, join, deps);
    }
    // The neighbouring virtual stage this op sends to.
    std::int64_t ns = -1, nc = c;
    if (!backward) {
      if (s + 1 < p_) {
        ns = s + 1;
      } else if (c + 1 < v_) {
        ns = 0, nc = c + 1;
      }
    } else if (s > 0) {
      ns = s - 1;
    } else if (c > 0) {
      ns = p_ - 1, nc = c - 1;
    }
    if (ns < 0) continue;
    const std::int64_t dst = rep(cls, ns);
    Meta send;
    send.kind = Kind::kSend;
    send.cls = static_cast<std::int32_t>(cls);
    send.stage = static_cast<std::int32_t>(s);
    send.chunk = static_cast<std::int32_t>(nc);
    send.mb = static_cast<std::int32_t>(mb);
    send.src = src;
    send.dst = dst;
    send.name = backward ? "send_backward" : "send_forward";
    send.nominal_s =
        costs_.collective(CollectiveKind::kSendRecv, w_.p2p_bytes, 2, w_.p2p_crosses_nodes ? 2 : 1).seconds;
    // 1F1B blocks the compute stream on its sends (Megatron's send_forward_recv_backward);
    // interleaving overlaps them unless overlap_p2p_comm is off.
    const bool blocking = v_ == 1 || !w_.overlap_p2p_comm;
    const LaneId send_lane = blocking ? lane : (backward ? send_bwd_lane_[cell] : send_fwd_lane_[cell]);
    send.stream = blocking ? kComputeStream : (backward ? kSendBackward : kSendForward);
    const ActivityId deps[] = {id};
    const ActivityId sid = record(
        sim_.add_transfer(send_lane, src, dst, transfer_bytes(src, dst, send.nominal_s), deps), send_lane, send, deps);
    (backward ? send_b_ : send_f_)[fb_index(cls, ns, nc, mb)] = sid;  // indexed by the receiver
  }
}

void Replay::wire_pipeline(std::int64_t cls, std::int64_t s) {
  for (std::int64_t c = 0; c < v_; ++c) {
    for (std::int64_t mb = 0; mb < m_; ++mb) {
      const std::size_t i = fb_index(cls, s, c, mb);
      if (send_f_[i] >= 0) {
        depend(send_f_[i], fwd_[i]);
        meta_[static_cast<std::size_t>(send_f_[i])].peer = fwd_[i];
      }
      if (send_b_[i] >= 0) {
        depend(send_b_[i], bwd_[i]);
        meta_[static_cast<std::size_t>(send_b_[i])].peer = bwd_[i];
      } else if (s == p_ - 1 && c == v_ - 1) {
        depend(fwd_[i], bwd_[i]);  // the loss: backward after its own forward
      }
    }
  }
}

// Gradient reduction per chunk (when overlapped: as soon as the chunk's last backward starts on
// every replica class), the optimizer on every class, then the parameter gather unless it
// overlaps the next step's forward.
void Replay::build_step(std::int64_t s) {
  const StageProgram& prog = w_.stages[static_cast<std::size_t>(s)];
  const LaneId lane = dp_lane_[static_cast<std::size_t>(s)];
  const auto classes = static_cast<std::int64_t>(replicas_.size());
  const bool chunked = w_.overlap_grad_reduce && v_ > 1;
  const double layers = static_cast<double>(l_.layers_on_rank(s));
  for (const WorkOp& op : prog.step) {
    if (op.cost != Cost::kDpComm || op.collective == CollectiveKind::kAllGather) continue;
    for (std::int64_t k = chunked ? v_ - 1 : 0; k >= 0; --k) {
      std::vector<ActivityId> deps;
      for (std::int64_t cls = 0; cls < classes; ++cls) {
        const std::size_t cell = static_cast<std::size_t>(cls * p_ + s);
        if (!w_.overlap_grad_reduce) {
          deps.push_back(last_backward_[cell]);
          continue;
        }
        // The chunk's last backward on this class: its predecessors mark its start.
        ActivityId last = -1;
        for (std::int64_t c = chunked ? k : 0; c <= (chunked ? k : v_ - 1); ++c) {
          const ActivityId b = bwd_[fb_index(cls, s, c, m_ - 1)];
          if (last < 0 || b > last) last = b;
        }
        for (ActivityId d : preds_[static_cast<std::size_t>(last)]) deps.push_back(d);
      }
      const double share =
          chunked ? static_cast<double>(l_.chunks[static_cast<std::size_t>(s)][static_cast<std::size_t>(k)].num_layers) / layers
                  : 1.0;
      add_ring(lane, op, s, k, share, deps);
    }
  }
  const ActivityId reduced = lane_last_[static_cast<std::size_t>(lane)];
  std::vector<ActivityId> optimizers;
  for (std::int64_t cls = 0; cls < classes; ++cls) {
    const std::size_t cell = static_cast<std::size_t>(cls * p_ + s);
    const LaneId cl = compute_lane_[cell];
    Meta meta;
    meta.kind = Kind::kOptimizer;
    meta.cls = static_cast<std::int32_t>(cls);
    meta.stage = static_cast<std::int32_t>(s);
    meta.nominal_s = e_.stages[static_cast<std::size_t>(s)].optimizer_s;
    meta.name = "optimizer";
    std::vector<ActivityId> deps;
    if (reduced >= 0) deps.push_back(reduced);
    optimizer_[cell] = record(sim_.add_compute(cl, rep(cls, s), meta.nominal_s, deps), cl, meta, deps);
    optimizers.push_back(optimizer_[cell]);
  }
  if (!w_.overlap_param_gather) {
    for (const WorkOp& op : prog.step) {
      if (op.cost == Cost::kDpComm && op.collective == CollectiveKind::kAllGather) add_ring(lane, op, s, 0, 1.0, optimizers);
    }
  }
}

std::vector<std::int32_t> Replay::links_of(const Meta& m) const {
  const RailFabric& f = sim_.fabric();
  std::vector<std::int32_t> out;
  auto add_route = [&](std::int64_t a, std::int64_t b) {
    const FabricRoute r = f.route(a, b);
    for (std::int32_t i = 0; i < r.size; ++i) out.push_back(r.links[static_cast<std::size_t>(i)]);
  };
  if (m.kind == Kind::kSend) add_route(m.src, m.dst);
  if (m.kind == Kind::kDpCollective && m.ring >= 0) {
    const auto& g = rings_[static_cast<std::size_t>(m.ring)].group;
    for (std::size_t i = 0; i < g.size(); ++i) add_route(g[i], g[(i + 1) % g.size()]);
  }
  return out;
}

// A perturbed link among `links` if there is one, else the most utilised.
std::string Replay::slow_link_on(std::span<const std::int32_t> links, double window) const {
  std::int32_t best = -1;
  double best_u = -1;
  for (std::int32_t id : links) {
    if (perturbed_links_.count(id)) return sim_.fabric().link_name(id);
    const double u = sim_.link_utilisation(id, window);
    if (u > best_u) best_u = u, best = id;
  }
  return best < 0 ? std::string("unknown") : sim_.fabric().link_name(best);
}

// Walks back from the end along the predecessor that finished last (the one that set each
// start time) and attributes every activity's time on the way.
void Replay::critical_path(ReplayResult& r) {
  const StageTimes* st = e_.stages.data();
  std::vector<Segment> segs;
  const double eps = 1e-12;
  ActivityId cur = end_;
  std::set<std::int64_t> slow_nodes;
  while (cur >= 0) {
    ++r.critical_activities;
    const Meta& m = meta_[static_cast<std::size_t>(cur)];
    const ActivityTiming t = sim_.timing(cur);
    const double d = t.end_s - t.start_s;
    const double extra = std::max(0.0, d - m.nominal_s);
    const std::int32_t cell = m.cls >= 0 ? static_cast<std::int32_t>(m.cls * p_ + m.stage) : -1;
    auto straggler = [&](double seconds) {
      if (seconds <= eps * 1e3) return;
      const std::int64_t d_rep = replicas_[static_cast<std::size_t>(m.cls)];
      const auto it = slow_.find(m.stage * l_.dp + d_rep);
      if (it == slow_.end()) {
        segs.push_back({cell, "idle", "", seconds});
        return;
      }
      const std::int64_t node = it->second.rank / sim_.fabric().gpus_per_node();
      slow_nodes.insert(node);
      segs.push_back({cell, it->second.cause == "gpu_type" ? "gpu_type" : "straggler",
                      fmt::format("rank {} (node {}) x{:.3g}", it->second.rank, node, it->second.factor), seconds});
    };
    switch (m.kind) {
      case Kind::kForward:
      case Kind::kBackward: {
        const StageTimes& s = st[m.stage];
        const double total = s.compute_s + s.tp_comm_s + s.cp_comm_s + s.ep_comm_s + s.dp_in_microbatch_s;
        const double base = std::min(d, m.nominal_s);
        auto part = [&](const char* cause, double x) {
          if (total > 0 && x > 0) segs.push_back({cell, cause, "", base * x / total});
        };
        if (total <= 0) segs.push_back({cell, "compute", "", base});
        part("compute", s.compute_s);
        part("tp_comm", s.tp_comm_s);
        part("cp_comm", s.cp_comm_s);
        part("ep_comm", s.ep_comm_s);
        part("dp_comm", s.dp_in_microbatch_s);
        straggler(extra);
        break;
      }
      case Kind::kOptimizer:
        segs.push_back({-1, "optimizer", "", std::min(d, m.nominal_s)});
        straggler(extra);
        break;
      case Kind::kSend:
      case Kind::kDpCollective: {
        segs.push_back({-1, m.kind == Kind::kSend ? "pp_comm" : "dp_comm", "", std::min(d, m.nominal_s)});
        if (extra > 1e-9 + 1e-6 * m.nominal_s) {
          const auto links = links_of(m);
          segs.push_back({-1, "contention", slow_link_on(links, sim_.timing(end_).end_s), extra});
        } else if (extra > 0) {
          segs.push_back({-1, m.kind == Kind::kSend ? "pp_comm" : "dp_comm", "", extra});
        }
        break;
      }
      case Kind::kJoin:
        if (d > 0) segs.push_back({-1, "idle", "", d});
        break;
    }
    ActivityId best = -1;
    double best_end = -std::numeric_limits<double>::infinity();
    for (ActivityId p : preds_[static_cast<std::size_t>(cur)]) {
      const double e = sim_.timing(p).end_s;
      if (e > best_end + eps) best_end = e, best = p;
    }
    const double gap = t.start_s - (best < 0 ? 0.0 : best_end);
    if (gap > eps) segs.push_back({-1, "idle", "", gap});
    cur = best;
  }
  // The cell where the path spends most compute is the steady state; compute elsewhere on the
  // path is pipeline fill and drain.
  std::map<std::int32_t, double> per_cell;
  for (const auto& sg : segs) {
    if (sg.cell >= 0 && sg.cause != "straggler" && sg.cause != "gpu_type") per_cell[sg.cell] += sg.seconds;
  }
  std::int32_t steady = -1;
  double most = -1;
  for (const auto& [c, x] : per_cell) {
    if (x > most) most = x, steady = c;
  }
  std::map<std::pair<std::string, std::string>, double> agg;
  StepBreakdown& b = r.breakdown;
  for (auto& sg : segs) {
    const bool slow = sg.cause == "straggler" || sg.cause == "gpu_type";
    if (sg.cell >= 0 && sg.cell != steady && !slow) sg.cause = "bubble";
    agg[{sg.cause, sg.detail}] += sg.seconds;
    if (sg.cause == "compute") b.compute_s += sg.seconds;
    if (sg.cause == "bubble" || sg.cause == "idle") b.bubble_s += sg.seconds;
    if (sg.cause == "tp_comm") b.tp_comm_s += sg.seconds;
    if (sg.cause == "cp_comm") b.cp_comm_s += sg.seconds;
    if (sg.cause == "ep_comm") b.ep_comm_s += sg.seconds;
    if (sg.cause == "dp_comm") b.dp_comm_s += sg.seconds;
    if (sg.cause == "pp_comm") b.pp_comm_s += sg.seconds;
    if (sg.cause == "optimizer") b.optimizer_s += sg.seconds;
    if (slow) r.straggler_s += sg.seconds;
    if (sg.cause == "contention") r.contention_s += sg.seconds;
  }
  for (const auto& [key, seconds] : agg) r.critical_path.push_back({key.first, key.second, seconds});
  std::stable_sort(r.critical_path.begin(), r.critical_path.end(),
                   [](const CriticalCause& a, const CriticalCause& c) { return a.seconds > c.seconds; });
  r.slow_nodes_on_path.assign(slow_nodes.begin(), slow_nodes.end());
}

void Replay::write_trace(ReplayResult& r) {
  // Which simulated cells appear, under which pid.
  std::map<std::int32_t, std::vector<std::int64_t>> pids_of_cell;
  const auto classes = static_cast<std::int64_t>(replicas_.size());
  if (o_.trace_ranks.empty()) {
    std::size_t n = 0;
    for (std::int64_t cls = 0; cls < classes && n < 64; ++cls) {
      for (std::int64_t s = 0; s < p_ && n < 64; ++s, ++n) {
        pids_of_cell[static_cast<std::int32_t>(cls * p_ + s)].push_back(rep(cls, s));
      }
    }
  } else {
    const std::int64_t per_stage = l_.tp * l_.cp * l_.dp;
    for (std::int64_t rank : o_.trace_ranks) {
      if (rank < 0 || rank >= l_.world) throw std::invalid_argument(fmt::format("trace rank {} outside 0..{}", rank, l_.world - 1));
      const std::int64_t s = rank / per_stage, d = rank % per_stage / (l_.tp * l_.cp);
      std::int64_t cls = 0;  // ranks of replicas nobody perturbs are shown as the nominal class
      for (std::int64_t k = 0; k < classes; ++k) {
        if (replicas_[static_cast<std::size_t>(k)] == d) cls = k;
      }
      pids_of_cell[static_cast<std::int32_t>(cls * p_ + s)].push_back(rank);
    }
  }
  std::map<std::int64_t, std::vector<std::int64_t>> pids_of_stage;  // for the DP lane
  for (const auto& [cell, pids] : pids_of_cell) {
    auto& v = pids_of_stage[cell % p_];
    v.insert(v.end(), pids.begin(), pids.end());
  }
  traces::ChromeTraceWriter tw;
  static constexpr const char* kStreamNames[] = {"compute", "pp send forward", "pp send backward", "dp"};
  for (const auto& [stage, pids] : pids_of_stage) {
    for (std::int64_t pid : pids) {
      tw.name_process(pid, fmt::format("rank {} (stage {})", pid, stage));
      for (std::int32_t tid = 0; tid < 4; ++tid) tw.name_thread(pid, tid, kStreamNames[tid]);
    }
  }
  std::int64_t flow_id = 0;
  for (std::size_t i = 0; i < meta_.size(); ++i) {
    const Meta& m = meta_[i];
    if (m.kind == Kind::kJoin) continue;
    const ActivityTiming t = sim_.timing(static_cast<ActivityId>(i));
    const std::vector<std::int64_t>* pids = nullptr;
    if (m.cls >= 0) {
      auto it = pids_of_cell.find(static_cast<std::int32_t>(m.cls * p_ + m.stage));
      if (it != pids_of_cell.end()) pids = &it->second;
    } else {
      auto it = pids_of_stage.find(m.stage);
      if (it != pids_of_stage.end()) pids = &it->second;
    }
    if (!pids) continue;
    for (std::int64_t pid : *pids) {
      traces::TraceSpan span;
      span.pid = pid;
      span.tid = m.stream;
      span.name = m.kind == Kind::kForward || m.kind == Kind::kBackward
                      ? fmt::format("{} c{} mb{}", m.name, m.chunk, m.mb)
                      : std::string(m.name);
      span.category = m.kind == Kind::kSend ? "pp" : m.kind == Kind::kDpCollective ? "dp" : "compute";
      span.start_s = t.start_s;
      span.duration_s = t.end_s - t.start_s;
      if (m.nominal_s > 0 && span.duration_s > m.nominal_s * (1 + 1e-6)) {
        span.args["stretch"] = fmt::format("{:.4f}", span.duration_s / m.nominal_s);
      }
      tw.add_span(std::move(span));
      ++r.trace_events;
    }
    if (m.kind == Kind::kSend && m.peer >= 0) {
      const Meta& to = meta_[static_cast<std::size_t>(m.peer)];
      auto a = pids_of_cell.find(static_cast<std::int32_t>(m.cls * p_ + m.stage));
      auto b = pids_of_cell.find(static_cast<std::int32_t>(to.cls * p_ + to.stage));
      if (a == pids_of_cell.end() || b == pids_of_cell.end()) continue;
      traces::TraceFlow fl;
      fl.id = ++flow_id;
      fl.name = std::string(m.name);
      fl.from_pid = a->second.front();
      fl.from_tid = m.stream;
      fl.from_s = 0.5 * (t.start_s + t.end_s);  // inside the send, so the arrow binds to it
      fl.to_pid = b->second.front();
      fl.to_tid = to.stream;
      fl.to_s = sim_.timing(m.peer).start_s;
      tw.add_flow(std::move(fl));
    }
  }
  traces::write_trace_file(tw, o_.trace_path);
}

ReplayResult Replay::run() {
  choose_replicas();
  apply_perturbation();
  const auto classes = static_cast<std::int64_t>(replicas_.size());
  const std::size_t cells = static_cast<std::size_t>(classes * p_);
  const std::size_t ops = cells * static_cast<std::size_t>(v_ * m_);
  fwd_.assign(ops, -1), bwd_.assign(ops, -1), send_f_.assign(ops, -1), send_b_.assign(ops, -1);
  last_backward_.assign(cells, -1);
  optimizer_.assign(cells, -1);
  auto new_lane = [&](std::int64_t home) {
    lane_last_.push_back(-1);
    return sim_.add_lane(home);
  };
  for (std::int64_t cls = 0; cls < classes; ++cls) {
    for (std::int64_t s = 0; s < p_; ++s) {
      compute_lane_.push_back(new_lane(rep(cls, s)));
      send_fwd_lane_.push_back(v_ > 1 ? new_lane(rep(cls, s)) : -1);
      send_bwd_lane_.push_back(v_ > 1 ? new_lane(rep(cls, s)) : -1);
    }
  }
  for (std::int64_t s = 0; s < p_; ++s) dp_lane_.push_back(new_lane(rank_of(0, 0, s)));
  // Parameter gathers that overlap the forward: at the start, chunk by chunk.
  if (w_.overlap_param_gather) {
    bool any = false;
    for (const auto& st : w_.stages) {
      for (const auto& op : st.step) any = any || (op.cost == Cost::kDpComm && op.collective == CollectiveKind::kAllGather);
    }
    if (any) {
      gather_.assign(static_cast<std::size_t>(p_ * v_), -1);
      for (std::int64_t s = 0; s < p_; ++s) {
        const double layers = static_cast<double>(l_.layers_on_rank(s));
        for (std::int64_t c = 0; c < v_; ++c) {
          const double share =
              v_ > 1 ? static_cast<double>(l_.chunks[static_cast<std::size_t>(s)][static_cast<std::size_t>(c)].num_layers) / layers
                     : 1.0;
          const LaneId lane = dp_lane_[static_cast<std::size_t>(s)];
          ActivityId last = -1;
          for (const auto& op : w_.stages[static_cast<std::size_t>(s)].step) {
            if (op.cost == Cost::kDpComm && op.collective == CollectiveKind::kAllGather) {
              last = add_ring(lane, op, s, c, share, {});
            }
          }
          if (last < 0) {  // this stage has nothing to gather
            Meta join;
            join.stage = static_cast<std::int32_t>(s);
            join.stream = kDpStream;
            last = record(sim_.add_delay(lane, 0.0), lane, join, {});
          }
          gather_[static_cast<std::size_t>(s * v_ + c)] = last;
        }
      }
    }
  }
  for (std::int64_t cls = 0; cls < classes; ++cls) {
    for (std::int64_t s = 0; s < p_; ++s) build_stage_lanes(cls, s);
  }
  for (std::int64_t cls = 0; cls < classes; ++cls) {
    for (std::int64_t s = 0; s < p_; ++s) wire_pipeline(cls, s);
  }
  for (std::int64_t s = 0; s < p_; ++s) build_step(s);
  std::vector<ActivityId> tails;
  for (std::size_t lane = 0; lane < lane_last_.size(); ++lane) {
    if (lane_last_[lane] >= 0) tails.push_back(lane_last_[lane]);
  }
  const LaneId end_lane = new_lane(0);
  Meta join;
  join.name = "step_end";
  end_ = record(sim_.add_delay(end_lane, 0.0, tails), end_lane, join, tails);
  sim_.run();

  ReplayResult r;
  r.step_time_s = sim_.timing(end_).end_s;
  r.replicas_simulated = classes;
  r.activities = sim_.activity_count();
  r.flows = sim_.flows_simulated();
  critical_path(r);
  if (!o_.trace_path.empty()) write_trace(r);
  return r;
}

}  // namespace

ReplayResult replay_training(const Workload& workload, const TrainingEstimate& estimate, const CostModel& costs,
                             const ClusterSpec& cluster, const ReplayOptions& options) {
  if (estimate.stages.size() != workload.stages.size()) {
    throw std::invalid_argument("the estimate does not belong to the workload");
  }
  Replay replay(workload, estimate, costs, cluster, options);
  return replay.run();
}

}  // namespace clustersim::sim
