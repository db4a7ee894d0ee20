#include "sim/training/training_replay.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <set>
#include <stdexcept>
#include <utility>

#include "traces/chrome_trace_writer.hpp"
#include "models/cost/fleet_variability.hpp"
#include "models/planning/iteration_graph.hpp"
#include "models/planning/step_attribution.hpp"
#include "sim/platform/network_simulation.hpp"
#include "traces/trace_file_writer.hpp"

namespace clustersim::sim {

namespace {

using Kind = IterationActivityKind;

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

class Replay {
 public:
  Replay(const Workload& w, const TrainingEstimate& e, const CostModel& costs, const ClusterSpec& cluster,
         const ReplayOptions& o)
      : w_(w), e_(e), costs_(costs), o_(o), l_(w.layout),
        sim_(routed(cluster, o.mechanisms), w.layout.world, PlatformKind::kRailFatTree, o.fleet_seed + 3),
        fleet_(cluster.fleet), sm_count_(cluster.gpu.sm_count) {
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

  // The cluster as simulated: ECMP routing unless ablated (then the uplinks form one bundle).
  static ClusterSpec routed(ClusterSpec cluster, const Mechanisms& m) {
    if (!m.ecmp) cluster.fabric.routing = "adaptive";
    return cluster;
  }
  void hash_pipeline_connections();
  double send_factor(const IterationActivity& a) const;
  void draw_fleet_hosts();
  void choose_replicas();
  double fleet_factor(std::int64_t d, std::int64_t s) const;
  void apply_perturbation();
  double transfer_bytes(std::int64_t src, std::int64_t dst, double seconds) const;
  double ring_bytes(const Ring& ring, double seconds) const;
  std::vector<std::int64_t> group_of(const WorkOp& op, std::int64_t s) const;
  std::int64_t home_of(const IterationLane& lane) const;
  void add_activities();
  std::string slow_link_on(std::span<const std::int32_t> links, double window) const;
  std::vector<std::int32_t> links_of(std::int32_t activity) const;
  void extra_time(std::int32_t activity, double extra_s, std::vector<PathSegment>& out,
                  std::set<std::int64_t>* slow_nodes) const;
  void write_trace(ReplayResult& r);

  const Workload& w_;
  const TrainingEstimate& e_;
  const CostModel& costs_;
  const ReplayOptions& o_;
  const ParallelLayout& l_;
  NetworkSimulation sim_;
  std::int64_t p_ = 1, v_ = 1, m_ = 1;

  std::vector<std::int64_t> replicas_;       // DP replica of each class; class 0 nominal unless full
  std::vector<std::int64_t> stood_for_;      // replicas the nominal class stands for (none when full)
  std::map<std::int64_t, CellSlow> slow_;    // (stage * dp + replica) -> slowdown
  std::set<std::int32_t> perturbed_links_;

  const FleetSpec& fleet_;
  std::vector<double> host_factor_;          // per host: persistent speed factor (1: none)
  std::vector<bool> slow_host_;              // per host: drawn among the slow hosts
  std::map<std::int64_t, double> cell_fleet_;  // (stage * dp + replica) -> its fleet factor
  std::vector<double> jitter_;               // per activity: the group's op-jitter factor
  std::vector<double> data_;                 // per activity: its micro-batch's data factor
  std::vector<std::vector<double>> data_factor_;  // per class and micro-batch
  void draw_data_imbalance();
  std::vector<StageTimes> stages_;           // the estimate's, with the mechanisms applied
  IterationGraph graph_;
  std::vector<std::int32_t> ring_of_;        // per activity: index into rings_, -1 if none
  std::vector<Ring> rings_;
  // ECMP: per (class, stage, to_stage), the slowest collision factor among the pipeline
  // connections the class stands for, with every replica's connections hashed on the fabric.
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, double> send_factor_;
  double worst_send_factor_ = 1.0;
  std::int64_t sm_count_ = 0;
  std::vector<double> interference_;  // per activity: compute time added by overlapped DP collectives' SMs
};

// Every directed stage boundary: all replicas' connections hash their flows onto the leaves'
// planes; a connection's factor is its busiest plane's load against its share of the NIC.
void Replay::hash_pipeline_connections() {
  const RailFabric& f = sim_.fabric();
  if (!f.ecmp() || p_ < 2) return;
  const std::int64_t flows = f.flows_per_peer();
  const double nic = f.nic_bandwidth_bytes_per_s();
  std::vector<std::int32_t> load(static_cast<std::size_t>(f.link_count()), 0);
  std::vector<std::int32_t> touched;
  auto leaf_link = [&](std::int32_t id) {
    const FabricLinkKind k = f.link(id).kind;
    return k == FabricLinkKind::kLeafUp || k == FabricLinkKind::kLeafDown;
  };
  auto for_each_flow = [&](std::int64_t d, std::int64_t s, std::int64_t to, auto&& visit) {
    for (std::int64_t cp = 0; cp < l_.cp; ++cp) {
      for (std::int64_t t = 0; t < l_.tp; ++t) {
        for (std::int64_t j = 0; j < flows; ++j) visit(f.route(rank_of(cp, d, s) + t, rank_of(cp, d, to) + t, j));
      }
    }
  };
  const auto classes = static_cast<std::int64_t>(replicas_.size());
  for (std::int64_t s = 0; s < p_; ++s) {
    for (std::int64_t to : {s + 1, s - 1}) {
      if (v_ > 1) to = (to + p_) % p_;  // interleaving wraps around
      if (to < 0 || to >= p_ || to == s) continue;
      for (std::int32_t id : touched) load[static_cast<std::size_t>(id)] = 0;
      touched.clear();
      for (std::int64_t d = 0; d < l_.dp; ++d) {
        for_each_flow(d, s, to, [&](const FabricRoute& r) {
          for (std::int32_t i = 0; i < r.size; ++i) {
            const std::int32_t id = r.links[static_cast<std::size_t>(i)];
            if (!leaf_link(id)) continue;
            if (load[static_cast<std::size_t>(id)]++ == 0) touched.push_back(id);
          }
        });
      }
      for (std::int64_t cls = 0; cls < classes; ++cls) {
        std::vector<std::int64_t> stands_for{replicas_[static_cast<std::size_t>(cls)]};
        if (cls == 0) stands_for.insert(stands_for.end(), stood_for_.begin(), stood_for_.end());
        double worst = 1.0;
        for (std::int64_t d : stands_for) {
          for_each_flow(d, s, to, [&](const FabricRoute& r) {
            for (std::int32_t i = 0; i < r.size; ++i) {
              const std::int32_t id = r.links[static_cast<std::size_t>(i)];
              if (!leaf_link(id)) continue;
              // Each of the connection's flows carries 1/flows of its bytes at the plane's fair
              // share (plane bandwidth / load) or its NIC share (nic / flows), whichever is less.
              const double plane = f.link(id).bandwidth_bytes_per_s;
              worst = std::max(worst, load[static_cast<std::size_t>(id)] * nic / (static_cast<double>(flows) * plane));
            }
          });
        }
        send_factor_[{cls, s, to}] = worst;
        worst_send_factor_ = std::max(worst_send_factor_, worst);
      }
    }
  }
}

double Replay::send_factor(const IterationActivity& a) const {
  const auto it = send_factor_.find({a.cls, a.stage, a.to_stage});
  return it == send_factor_.end() ? 1.0 : it->second;
}

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
  // A replica with a GPU on a slow host runs explicitly (its pipeline is the slow one).
  for (std::size_t h = 0; h < slow_host_.size(); ++h) {
    if (!slow_host_[h]) continue;
    const std::int64_t gpn = f.gpus_per_node();
    for (std::int64_t g = static_cast<std::int64_t>(h) * gpn; g < std::min(l_.world, (static_cast<std::int64_t>(h) + 1) * gpn); ++g) {
      explicit_replicas.insert(g % per_stage / (l_.tp * l_.cp));
    }
  }
  if (o_.full) {
    for (std::int64_t d = 0; d < l_.dp; ++d) replicas_.push_back(d);
    return;
  }
  for (std::int64_t d = 0; d < l_.dp; ++d) {
    if (explicit_replicas.count(d)) continue;
    if (replicas_.empty()) replicas_.push_back(d);  // the nominal class: the first replica nothing perturbs
    stood_for_.push_back(d);
  }
  for (std::int64_t d : explicit_replicas) replicas_.push_back(d);
}

// Every host's persistent factor, drawn with the seed in host order: slow with the fleet's
// probability, and a speed spread for all.
void Replay::draw_fleet_hosts() {
  if (!fleet_.enabled() || !o_.mechanisms.variability) return;
  const std::int64_t gpn = sim_.fabric().gpus_per_node();
  const std::int64_t hosts = (l_.world + gpn - 1) / gpn;
  FleetRandom random(o_.fleet_seed);
  host_factor_.resize(static_cast<std::size_t>(hosts));
  slow_host_.resize(static_cast<std::size_t>(hosts));
  for (std::int64_t h = 0; h < hosts; ++h) {
    const bool slow = random.uniform() < fleet_.slow_host_fraction;
    const double spread = 1.0 + fleet_.host_speed_cv * random.standard_normal();
    slow_host_[static_cast<std::size_t>(h)] = slow;
    host_factor_[static_cast<std::size_t>(h)] = std::max(0.5, (slow ? fleet_.slow_host_slowdown : 1.0) * spread);
  }
}

// Each micro-batch's data factor per replica (1 + N(0, cv), drawn in replica and micro-batch
// order with the seed + 2). An explicit class takes its replica's; the nominal class, standing for
// every other replica, takes the one whose micro-batches cost most in total: the DP collectives
// wait for it.
// Each (replica, micro-batch) data factor: with the plan's packed documents, the sequence's
// documents drawn from the histogram (its attention at r / E[r] of the price, weighted by the
// stage's attention share); else 1 + N(0, the fleet's data cv).
void Replay::draw_data_imbalance() {
  if (!o_.mechanisms.data_imbalance) return;
  const bool documents = w_.documents.has_value() && e_.document_attention_share > 0;
  if (!documents && (!fleet_.enabled() || fleet_.data_imbalance_cv <= 0)) return;
  FleetRandom random(o_.fleet_seed + 2);
  std::vector<std::vector<double>> per_replica(static_cast<std::size_t>(l_.dp), std::vector<double>(static_cast<std::size_t>(m_)));
  std::vector<double> total(static_cast<std::size_t>(l_.dp), 0.0);
  for (std::size_t d = 0; d < per_replica.size(); ++d) {
    for (double& f : per_replica[d]) {
      if (documents) {
        const double r = draw_packed_attention_ratio(*w_.documents, l_.seq_length, random);
        f = 1.0 + e_.document_attention_share * (r / w_.packed_attention.mean - 1.0);
      } else {
        f = std::max(0.5, 1.0 + fleet_.data_imbalance_cv * random.standard_normal());
      }
      total[d] += f;
    }
  }
  data_factor_.clear();
  for (std::size_t cls = 0; cls < replicas_.size(); ++cls) {
    std::int64_t d = replicas_[cls];
    if (cls == 0) {
      for (std::int64_t other : stood_for_) {
        if (total[static_cast<std::size_t>(other)] > total[static_cast<std::size_t>(d)]) d = other;
      }
    }
    data_factor_.push_back(per_replica[static_cast<std::size_t>(d)]);
  }
}

// The fleet factor of replica d at stage s: its slowest host (a TP group sits in one host, a CP
// group may span several). The nominal class stands for every replica nothing else makes
// explicit, so it runs at the slowest of their hosts: the DP collectives wait for them all.
double Replay::fleet_factor(std::int64_t d, std::int64_t s) const {
  if (host_factor_.empty()) return 1.0;
  const std::int64_t gpn = sim_.fabric().gpus_per_node();
  double worst = 0;
  for (std::int64_t cp = 0; cp < l_.cp; ++cp) {
    worst = std::max(worst, host_factor_[static_cast<std::size_t>(rank_of(cp, d, s) / gpn)]);
  }
  return worst;
}

void Replay::apply_perturbation() {
  for (std::size_t cls = 0; cls < replicas_.size(); ++cls) {
    const std::int64_t d = replicas_[cls];
    for (std::int64_t s = 0; s < l_.pp; ++s) {
      double fleet = fleet_factor(d, s);
      if (cls == 0) {
        for (std::int64_t other : stood_for_) fleet = std::max(fleet, fleet_factor(other, s));
      }
      auto it = slow_.find(s * l_.dp + d);
      const double scenario = it == slow_.end() ? 1.0 : it->second.factor;
      if (fleet != 1.0) cell_fleet_[s * l_.dp + d] = fleet;
      if (scenario * fleet != 1.0) sim_.set_rank_slowdown(rank_of(0, d, s), scenario * fleet);
    }
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

// The GPU whose host runs a lane: the cell's representative rank; DP lanes and the step end run
// on the stage's first rank.
std::int64_t Replay::home_of(const IterationLane& lane) const {
  if (lane.stage < 0) return 0;
  return lane.cls >= 0 ? rep(lane.cls, lane.stage) : rank_of(0, 0, lane.stage);
}

// The iteration graph on the platform: compute at the representative rank's speed, pipeline
// sends as transfers between neighbouring representatives, DP collectives as rings over the
// stage's real DP group (rail 0: every rail carries the same traffic), each sized so that alone
// on the platform it takes its nominal time.
void Replay::add_activities() {
  std::vector<LaneId> lanes;
  for (const IterationLane& lane : graph_.lanes) lanes.push_back(sim_.add_lane(home_of(lane)));
  ring_of_.assign(graph_.activities.size(), -1);
  jitter_.assign(graph_.activities.size(), 1.0);
  data_.assign(graph_.activities.size(), 1.0);
  FleetRandom random(o_.fleet_seed + 1);  // per-activity draws, in activity order
  const bool jitter = fleet_.enabled() && o_.mechanisms.variability && fleet_.op_jitter_cv > 0;
  std::vector<ActivityId> deps;
  std::vector<std::pair<ActivityId, ActivityId>> later;  // (before, after) with before added after
  for (std::size_t i = 0; i < graph_.activities.size(); ++i) {
    const IterationActivity& a = graph_.activities[i];
    const auto id = static_cast<ActivityId>(i);
    deps.clear();
    for (std::int32_t p : graph_.preds(id)) {
      if (p < id) {
        deps.push_back(p);
      } else {
        later.push_back({p, id});
      }
    }
    const LaneId lane = lanes[static_cast<std::size_t>(a.lane)];
    ActivityId got = -1;
    switch (a.kind) {
      case Kind::kForward:
      case Kind::kBackward:
        if (jitter) jitter_[i] = draw_group_jitter_factor(fleet_, l_.tp * l_.cp, random);
        if (!data_factor_.empty()) data_[i] = data_factor_[static_cast<std::size_t>(a.cls)][static_cast<std::size_t>(a.mb)];
        got = sim_.add_compute(lane, rep(a.cls, a.stage),
                               a.nominal_s * jitter_[i] * data_[i] + (interference_.empty() ? 0.0 : interference_[i]), deps);
        break;
      case Kind::kOptimizer: got = sim_.add_compute(lane, rep(a.cls, a.stage), a.nominal_s, deps); break;
      case Kind::kHost: got = sim_.add_delay(lane, a.nominal_s, deps); break;
      case Kind::kSend: {
        const std::int64_t src = rep(a.cls, a.stage), dst = rep(a.cls, a.to_stage);
        got = sim_.add_transfer(lane, src, dst, transfer_bytes(src, dst, a.nominal_s) * send_factor(a), deps);
        break;
      }
      case Kind::kDpCollective: {
        const WorkOp& op = w_.stages[static_cast<std::size_t>(a.stage)].step[static_cast<std::size_t>(a.dp_op)];
        Ring ring{group_of(op, a.stage), ring_kind(op.collective)};
        const double bytes = ring.group.size() < 2 ? 0 : ring_bytes(ring, a.nominal_s);
        got = sim_.add_ring_collective(lane, ring.kind, ring.group, bytes, deps);
        ring_of_[i] = static_cast<std::int32_t>(rings_.size());
        rings_.push_back(std::move(ring));
        break;
      }
      case Kind::kJoin: got = sim_.add_delay(lane, a.nominal_s, deps); break;
    }
    if (got != id) throw std::logic_error("activity ids out of order");
  }
  for (const auto& [before, after] : later) sim_.add_dependency(before, after);
}

std::vector<std::int32_t> Replay::links_of(std::int32_t activity) const {
  const RailFabric& f = sim_.fabric();
  const IterationActivity& m = graph_.activities[static_cast<std::size_t>(activity)];
  std::vector<std::int32_t> out;
  auto add_route = [&](std::int64_t a, std::int64_t b) {
    const FabricRoute r = f.route(a, b);
    for (std::int32_t i = 0; i < r.size; ++i) out.push_back(r.links[static_cast<std::size_t>(i)]);
  };
  if (m.kind == Kind::kSend) add_route(rep(m.cls, m.stage), rep(m.cls, m.to_stage));
  const std::int32_t ring = ring_of_[static_cast<std::size_t>(activity)];
  if (ring >= 0) {
    const auto& g = rings_[static_cast<std::size_t>(ring)].group;
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

// Names the time an activity took beyond its nominal duration: a slowed rank's compute, a
// transfer or ring stretched by a shared or perturbed link.
// `slow_nodes` (critical-path activities only) collects the straggling nodes it names.
void Replay::extra_time(std::int32_t activity, double extra_s, std::vector<PathSegment>& out,
                        std::set<std::int64_t>* slow_nodes) const {
  const IterationActivity& m = graph_.activities[static_cast<std::size_t>(activity)];
  const double eps = 1e-12;
  switch (m.kind) {
    case Kind::kForward:
    case Kind::kBackward:
    case Kind::kOptimizer: {
      if (extra_s <= eps * 1e3) return;
      if (!interference_.empty() && interference_[static_cast<std::size_t>(activity)] > 0) {
        const double slowed = std::min(extra_s, interference_[static_cast<std::size_t>(activity)]);
        out.push_back({"interference", "SMs held by overlapped DP collectives", slowed});
        extra_s -= slowed;
        if (extra_s <= eps * 1e3) return;
      }
      // The activity ran nominal x scenario x fleet x jitter: the scenario's share first, the
      // fleet's (host and jitter) after it.
      const std::int64_t d_rep = replicas_[static_cast<std::size_t>(m.cls)];
      const auto it = slow_.find(m.stage * l_.dp + d_rep);
      const auto fl = cell_fleet_.find(m.stage * l_.dp + d_rep);
      const double scenario = it == slow_.end() ? 1.0 : it->second.factor;
      const double host = fl == cell_fleet_.end() ? 1.0 : fl->second;
      const double jitter = jitter_[static_cast<std::size_t>(activity)], data = data_[static_cast<std::size_t>(activity)];
      const double fleet = host * jitter * data;
      // nominal x fleet x (scenario - 1) is the scenario's stretch on top of the fleet's (which
      // may be below 1: a fast host); the rest is the fleet's.
      const double scenario_s = std::clamp(m.nominal_s * fleet * (scenario - 1.0), 0.0, extra_s);
      if (scenario_s > eps) {
        const std::int64_t node = it->second.rank / sim_.fabric().gpus_per_node();
        if (slow_nodes) slow_nodes->insert(node);
        out.push_back({it->second.cause == "gpu_type" ? "gpu_type" : "straggler",
                       fmt::format("rank {} (node {}) x{:.3g}", it->second.rank, node, it->second.factor), scenario_s});
      }
      double fleet_s = extra_s - scenario_s;
      // The micro-batch's data takes its share of the fleet's stretch (by the logarithms of the
      // factors that stretched it).
      const double up = std::max(0.0, std::log(host)) + std::max(0.0, std::log(jitter)) + std::max(0.0, std::log(data));
      if (fleet_s > eps && data > 1.0 && up > 0) {
        const double imbalance_s = fleet_s * std::log(data) / up;
        out.push_back({"imbalance", fmt::format("micro-batch {} data x{:.4g}", m.mb, data), imbalance_s});
        fleet_s -= imbalance_s;
      }
      if (fleet_s > eps && host * jitter > 1.0) {
        std::string detail = "host speed spread and op jitter";
        const std::int64_t gpn = sim_.fabric().gpus_per_node();
        for (std::int64_t cp = 0; cp < l_.cp && !slow_host_.empty(); ++cp) {
          const std::int64_t host = rank_of(cp, d_rep, m.stage) / gpn;
          if (slow_host_[static_cast<std::size_t>(host)]) detail = fmt::format("slow host {} x{:.4g}", host, host_factor_[static_cast<std::size_t>(host)]);
        }
        out.push_back({"variability", detail, fleet_s});
      } else if (fleet_s > eps) {
        out.push_back({"idle", "", fleet_s});
      }
      return;
    }
    case Kind::kSend:
    case Kind::kDpCollective:
      if (m.kind == Kind::kSend && send_factor(m) > 1.0) {
        // The part ECMP's hash added (the transfer ran with its busiest plane's load), then any
        // contention the simulated flows met on top.
        const double ecmp_s = std::min(extra_s, m.nominal_s * (send_factor(m) - 1.0));
        out.push_back({"contention", fmt::format("ECMP collisions (pipeline transfers, worst x{:.3g})", worst_send_factor_), ecmp_s});
        extra_s -= ecmp_s;
        if (extra_s <= 1e-9 + 1e-6 * m.nominal_s) return;
      }
      if (extra_s > 1e-9 + 1e-6 * m.nominal_s) {
        out.push_back({"contention", slow_link_on(links_of(activity), sim_.timing(graph_.end).end_s), extra_s});
      } else {
        out.push_back({m.kind == Kind::kSend ? "pp_comm" : "dp_comm", "", extra_s});
      }
      return;
    case Kind::kHost:
    case Kind::kJoin: out.push_back({"idle", "", extra_s}); return;
  }
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
  for (std::size_t i = 0; i < graph_.activities.size(); ++i) {
    const IterationActivity& m = graph_.activities[i];
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
      const IterationActivity& to = graph_.activities[static_cast<std::size_t>(m.peer)];
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
  draw_fleet_hosts();
  choose_replicas();
  hash_pipeline_connections();
  apply_perturbation();
  const auto classes = static_cast<std::int64_t>(replicas_.size());
  draw_data_imbalance();
  stages_ = scheduled_stage_times(e_.stages, o_.mechanisms);
  graph_ = build_iteration_graph(w_, stages_, costs_, classes,
                                 fleet_.enabled() && o_.mechanisms.fixed_costs ? fleet_.data_loading_s : 0.0);
  // Interference priced on the graph's own nominal timeline (as the estimate does on its own).
  if (o_.mechanisms.interference) interference_ = interference_extra_s(graph_, evaluate_iteration(graph_), sm_count_);
  add_activities();
  sim_.run();

  ReplayResult r;
  const std::span<const ActivityTiming> timings = sim_.timings();
  std::vector<ActivitySpan> spans(timings.size());
  for (std::size_t i = 0; i < spans.size(); ++i) spans[i] = {timings[i].start_s, timings[i].end_s};
  std::set<std::int64_t> slow_nodes;
  const StepAttribution a = attribute_step(graph_, spans, stages_,
                                           [&](std::int32_t activity, double extra_s, bool on_path, std::vector<PathSegment>& out) {
                                             extra_time(activity, extra_s, out, on_path ? &slow_nodes : nullptr);
                                           });
  r.step_time_s = a.step_time_s;
  r.breakdown = a.breakdown;
  r.straggler_s = a.straggler_s;
  r.contention_s = a.contention_s;
  r.variability_s = a.variability_s;
  r.critical_path = a.causes;
  r.critical_activities = a.critical_activities;
  r.slow_nodes_on_path.assign(slow_nodes.begin(), slow_nodes.end());
  r.replicas_simulated = classes;
  r.activities = sim_.activity_count();
  r.flows = sim_.flows_simulated();
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
