#include "models/cost/cost_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <utility>

namespace clustersim {

std::string describe(const std::vector<RangeExcess>& excess) {
  std::string out;
  for (const RangeExcess& e : excess) {
    out += fmt::format("{}{} {:g} {} {:g} (x{:.2f})", out.empty() ? "" : ", ", e.variable, e.value,
                       e.value > e.bound ? ">" : "<", e.bound, e.ratio());
  }
  return out;
}

namespace {

// The inputs outside the fit's measured range. A tolerance of one part in 1e9 keeps the fitted
// end points themselves inside.
std::vector<RangeExcess> beyond(const Fit& fit, std::initializer_list<std::pair<const char*, double>> inputs) {
  std::vector<RangeExcess> excess;
  for (const auto& [variable, value] : inputs) {
    auto it = fit.ranges.find(variable);
    if (it == fit.ranges.end()) continue;
    if (value < it->second.min * (1 - 1e-9)) excess.push_back({variable, value, it->second.min});
    if (value > it->second.max * (1 + 1e-9)) excess.push_back({variable, value, it->second.max});
  }
  return excess;
}

// `derived`: the fit was applied to another shape or dtype than it measured (said in `how`).
PricedOp priced(const Fit& fit, double seconds, bool derived, std::vector<RangeExcess> excess = {},
                std::string how = {}) {
  PricedOp p;
  p.seconds = seconds;
  p.extrapolated = derived || !excess.empty();
  p.roofline_default = fit.origin == FitOrigin::kRooflineDefault;
  p.basis = how.empty() ? fit.id : fmt::format("{} ({})", fit.id, how);
  p.outside_range = std::move(excess);
  return p;
}

// Ring steps of a collective over n ranks: latency terms scale with them.
double ring_steps(CollectiveKind kind, int n) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return 2.0 * (n - 1);
    case CollectiveKind::kSendRecv:
      return 1.0;
    default:
      return n - 1.0;
  }
}

bool is_16bit_float(Dtype d) { return d == Dtype::kBf16 || d == Dtype::kFp16; }

// Prefer measured fits over roofline defaults.
int preference(const Fit& f) { return f.origin == FitOrigin::kFitted ? 0 : 1; }

// Points a fit needs before `calibrate report` calls it ok (docs/profiles.md, "Adding a GPU").
constexpr std::int64_t kEnoughPoints = 6;

}  // namespace

CostModel::CostModel(Profile profile, std::string profile_file, const ClusterSpec& cluster)
    : profile_(std::move(profile)),
      file_(std::move(profile_file)),
      gpus_per_node_(static_cast<int>(cluster.node.gpus_per_node)),
      nccl_(cluster.nccl) {}

void CostModel::missing(const std::string& what, const std::string& hint) const {
  throw_input_error(file_, "/fits", fmt::format("no fit prices {}", what), hint);
}

PricedOp CostModel::gemm(const GemmShapeDims& shape, Dtype dtype, bool grouped) const {
  // A MoE layer's expert GEMMs take a grouped fit of their dtype (or its 16-bit sibling) when
  // the profile has one, else the dense fit below.
  if (grouped) {
    const Fit* best = nullptr;
    for (const auto& f : profile_.fits) {
      const auto* g = std::get_if<GroupedGemmFit>(&f.model);
      if (!g || !(g->dtype == dtype || (is_16bit_float(g->dtype) && is_16bit_float(dtype)))) continue;
      if (!best || (g->dtype == dtype && std::get<GroupedGemmFit>(best->model).dtype != dtype)) best = &f;
    }
    if (best) {
      const auto& g = std::get<GroupedGemmFit>(best->model);
      const double flops = 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.n) *
                           static_cast<double>(shape.k) * static_cast<double>(shape.batch);
      const bool substituted = g.dtype != dtype;
      return priced(*best, static_cast<double>(shape.batch) * g.per_expert_s + flops / g.flops_per_s, substituted,
                    beyond(*best, {{"rows_per_expert", static_cast<double>(shape.m)},
                                   {"experts", static_cast<double>(shape.batch)}}),
                    substituted ? fmt::format("used for {}", to_string(dtype)) : "");
    }
  }
  // Measured before roofline; a fit of enough points before one of a few (a single best-shape
  // figure fits only an SM rate); then the same dtype before its sibling (FP16 and BF16 run on
  // the same tensor cores at the same rate).
  const Fit* best = nullptr;
  int best_score = std::numeric_limits<int>::max();
  for (const auto& f : profile_.fits) {
    const auto* g = std::get_if<GemmFit>(&f.model);
    if (!g) continue;
    bool same = g->dtype == dtype;
    bool sibling = (dtype == Dtype::kBf16 && g->dtype == Dtype::kFp16) ||
                   (dtype == Dtype::kFp16 && g->dtype == Dtype::kBf16);
    if (!same && !sibling) continue;
    bool few = f.origin == FitOrigin::kFitted && f.error.points < kEnoughPoints;
    int score = 100 * preference(f) + 10 * (few ? 1 : 0) + (same ? 0 : 1);
    if (score < best_score) {
      best_score = score;
      best = &f;
    }
  }
  const bool substituted = best && std::get<GemmFit>(best->model).dtype != dtype;
  if (!best) {
    missing(fmt::format("a {} GEMM", to_string(dtype)),
            "measure GEMMs of this dtype, or refit with --cluster to add a roofline default");
  }
  const auto& g = std::get<GemmFit>(best->model);
  double in = bytes_per_element(dtype);
  double out = dtype == Dtype::kFp8 ? 2.0 : in;
  double t = gemm_time_s(shape, nullptr, in, out, g.parameters);
  return priced(*best, t, substituted,
                beyond(*best, {{"m", static_cast<double>(shape.m)},
                               {"n", static_cast<double>(shape.n)},
                               {"k", static_cast<double>(shape.k)}}),
                substituted ? fmt::format("used for {}", to_string(dtype)) : "");
}

PricedOp CostModel::attention(const AttentionRecord& shape) const {
  if (shape.pass == AttentionPass::kDecode) {
    for (const auto& f : profile_.fits) {
      if (const auto* d = std::get_if<DecodeAttentionFit>(&f.model)) {
        double kv = decode_kv_bytes(shape);
        return priced(f, d->launch_s + kv * d->seconds_per_byte, false, beyond(f, {{"kv_bytes", kv}}));
      }
    }
    missing("decode attention", "measure decode attention, or refit with --cluster");
  }
  // The fit of the same pass (a forward+backward fit serves either, scaled by FLOPs), same
  // causality if possible, nearest head dimension.
  const Fit* best = nullptr;
  double best_score = std::numeric_limits<double>::infinity();
  for (const auto& f : profile_.fits) {
    const auto* a = std::get_if<AttentionFit>(&f.model);
    if (!a) continue;
    bool same_pass = a->pass == shape.pass;
    if (!same_pass && a->pass != AttentionPass::kForwardBackward) continue;
    // Measured before roofline, then same pass, causality, nearest head dimension.
    double score = 1e5 * preference(f) + (same_pass ? 0 : 1000) + (a->causal == shape.causal ? 0 : 100) +
                   std::abs(std::log2(static_cast<double>(a->head_dim) / static_cast<double>(shape.head_dim)));
    if (score < best_score) {
      best_score = score;
      best = &f;
    }
  }
  if (!best) {
    missing(fmt::format("attention {}", to_string(shape.pass)),
            "measure attention, or refit with --cluster to add a roofline default");
  }
  const auto& a = std::get<AttentionFit>(best->model);
  double flops = attention_pass_flops(shape);
  bool exact = best_score < 1;  // same pass, same causality, same head dim
  return priced(*best, saturating_time_s(a.efficiency, flops, static_cast<double>(shape.seq_kv)),
                !exact, beyond(*best, {{"seq_kv", static_cast<double>(shape.seq_kv)}}),
                exact ? "" : "nearest fit");
}

const Fit* CostModel::find_collective(CollectiveKind kind, int ranks, int nodes, bool network) const {
  // Measured before roofline; then the exact shape; else the same kind in the same scope;
  // else all_reduce in the scope.
  const Fit* best = nullptr;
  int best_rank = std::numeric_limits<int>::max();
  for (const auto& f : profile_.fits) {
    const auto* c = std::get_if<CollectiveFit>(&f.model);
    if (!c || (c->nodes > 1) != network) continue;
    int rank = 1000 * preference(f);
    if (c->kind != kind) {
      if (c->kind != CollectiveKind::kAllReduce) continue;
      rank += 100;
    }
    if (c->ranks != ranks || c->nodes != nodes) rank += 10;
    if (network && c->ranks / c->nodes != ranks / nodes) rank += 5;
    if (rank < best_rank) {
      best_rank = rank;
      best = &f;
    }
  }
  return best;
}

PricedOp CostModel::scaled_collective(const Fit& fit, CollectiveKind kind, double size_bytes,
                                      int ranks, int nodes) const {
  const auto& c = std::get<CollectiveFit>(fit.model);
  if (c.kind == kind && c.ranks == ranks && c.nodes == nodes) {
    return priced(fit, alpha_beta_time_s(c.segments, size_bytes), false, beyond(fit, {{"size_bytes", size_bytes}}));
  }
  // Ring scaling: latency with the steps over the nodes (or ranks) a ring crosses, bandwidth
  // with the nccl-tests bus factor; the segment is the one the fit uses at this size.
  const AlphaBetaSegment& seg = alpha_beta_segment(c.segments, size_bytes);
  bool network = c.nodes > 1;
  double steps = network ? ring_steps(kind, nodes) / ring_steps(c.kind, c.nodes)
                         : ring_steps(kind, ranks) / ring_steps(c.kind, c.ranks);
  double bus = bus_bandwidth_factor(kind, ranks) / bus_bandwidth_factor(c.kind, c.ranks);
  double t = seg.latency_s * steps + seg.seconds_per_byte * size_bytes * bus;
  return priced(fit, t, true, {},
                fmt::format("ring-scaled to {} over {}x{}", to_string(kind), ranks, nodes));
}

PricedOp CostModel::collective(CollectiveKind kind, double size_bytes, int ranks, int nodes) const {
  if (ranks <= 1) {
    PricedOp none;
    none.basis = "no peers";
    return none;
  }
  if (nodes <= 1) {
    const Fit* f = find_collective(kind, ranks, 1, false);
    if (!f) missing(fmt::format("{} inside a node", to_string(kind)), "measure it, or refit with --cluster");
    return scaled_collective(*f, kind, size_bytes, ranks, 1);
  }
  // A measured multi-node shape with the same GPUs per node prices directly (or ring-scaled
  // in the node count).
  const int per_node = std::max(1, ranks / nodes);
  const Fit* net = find_collective(kind, ranks, nodes, true);
  if (!net) missing(fmt::format("{} across nodes", to_string(kind)), "measure it, or refit with --cluster");
  if (net->origin == FitOrigin::kRooflineDefault) {
    if (auto p = nccl_collective(kind, size_bytes, ranks, nodes)) return *p;
  }
  const auto& nc = std::get<CollectiveFit>(net->model);
  if (nc.ranks / nc.nodes == per_node || per_node == 1) {
    return scaled_collective(*net, kind, size_bytes, ranks, nodes);
  }
  // Rail-optimised ring (what NCCL's rings do on such clusters): each of the g GPUs of a node
  // has its own NIC on its own rail, every ring crosses the network once per node, so the g
  // rails together carry the data and the ring runs at the slower of NVLink and g rails.
  // Latency: the ring steps inside a node at NVLink latency plus those between nodes at the
  // rail's.
  const Fit* intra = find_collective(kind, per_node, 1, false);
  const Fit* rail = find_collective(kind, nodes, nodes, true);
  if (!intra || !rail) {
    missing(fmt::format("the NVLink and rail parts of a multi-node {}", to_string(kind)),
            "refit with --cluster");
  }
  const auto& intra_fit = std::get<CollectiveFit>(intra->model);
  const auto& rail_fit = std::get<CollectiveFit>(rail->model);
  const AlphaBetaSegment& intra_seg = alpha_beta_segment(intra_fit.segments, size_bytes);
  const AlphaBetaSegment& rail_seg = alpha_beta_segment(rail_fit.segments, size_bytes / per_node);
  // Seconds per byte of bus traffic (nccl-tests' busbw, inverted) on each kind of link.
  double intra_bus_s = intra_seg.seconds_per_byte / bus_bandwidth_factor(intra_fit.kind, intra_fit.ranks);
  double rail_bus_s = rail_seg.seconds_per_byte / bus_bandwidth_factor(rail_fit.kind, rail_fit.ranks) / per_node;
  double latency = intra_seg.latency_s * ring_steps(kind, per_node) / ring_steps(intra_fit.kind, intra_fit.ranks) +
                   rail_seg.latency_s * ring_steps(kind, nodes) / ring_steps(rail_fit.kind, rail_fit.nodes);
  PricedOp total;
  total.seconds = latency + size_bytes * bus_bandwidth_factor(kind, ranks) * std::max(intra_bus_s, rail_bus_s);
  total.extrapolated = true;
  total.roofline_default = intra->origin == FitOrigin::kRooflineDefault || rail->origin == FitOrigin::kRooflineDefault;
  total.basis = fmt::format("rail ring: {} inside nodes, {} across {} rails", intra->id, rail->id, per_node);
  return total;
}

namespace {

std::optional<NcclCollective> nccl_kind(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce: return NcclCollective::kAllReduce;
    case CollectiveKind::kReduceScatter: return NcclCollective::kReduceScatter;
    case CollectiveKind::kAllGather: return NcclCollective::kAllGather;
    default: return std::nullopt;
  }
}

}  // namespace

std::optional<NcclChoice> CostModel::nccl_choice(CollectiveKind kind, double size_bytes, int ranks, int nodes) const {
  const std::optional<NcclCollective> coll = nccl_kind(kind);
  if (!nccl_ || !coll || ranks <= 1) return std::nullopt;
  nodes = std::max(1, nodes);
  const int per_node = std::max(1, ranks / nodes);
  const NcclCommunicator comm{nccl_graphs_for_ranks(*nccl_, per_node, gpus_per_node_), nodes, per_node};
  return nccl_choose(comm, *coll, size_bytes);
}

std::optional<PricedOp> CostModel::nccl_collective(CollectiveKind kind, double size_bytes, int ranks,
                                                   int nodes) const {
  const std::optional<NcclChoice> choice = nccl_choice(kind, size_bytes, ranks, nodes);
  if (!choice) return std::nullopt;
  PricedOp p;
  p.seconds = choice->time_us * 1e-6;
  p.extrapolated = true;       // a model, not a measurement of this shape
  p.roofline_default = true;   // not measured
  p.basis = fmt::format("NCCL v2.30.7 tuner model: {}/{} over {}x{}", to_string(choice->algorithm),
                        to_string(choice->protocol), nodes, std::max(1, ranks / nodes));
  return p;
}

PricedOp CostModel::tp_all_reduce(double size_bytes, int ranks, int nodes) const {
  nodes = std::max(1, nodes);
  if (ranks <= 1) return collective(CollectiveKind::kAllReduce, size_bytes, ranks, nodes);
  // A measurement of NCCL on these GPUs at this size wins: the tuner's constants are NCCL's
  // estimates for choosing an algorithm, not timings (docs/serve.md, "TP all-reduces").
  if (const Fit* f = find_collective(CollectiveKind::kAllReduce, ranks, nodes, nodes > 1);
      f && f->origin == FitOrigin::kFitted) {
    const auto& c = std::get<CollectiveFit>(f->model);
    if (c.kind == CollectiveKind::kAllReduce && c.ranks == ranks && c.nodes == nodes &&
        beyond(*f, {{"size_bytes", size_bytes}}).empty()) {
      return priced(*f, alpha_beta_time_s(c.segments, size_bytes), false);
    }
  }
  if (auto p = nccl_collective(CollectiveKind::kAllReduce, size_bytes, ranks, nodes)) return *p;
  return collective(CollectiveKind::kAllReduce, size_bytes, ranks, nodes);
}

int CostModel::collective_sms(CollectiveKind kind, double size_bytes, int ranks, int nodes) const {
  const std::optional<NcclChoice> choice = nccl_choice(kind, size_bytes, ranks, nodes);
  return choice ? choice->exec_channels : 0;
}

PricedOp CostModel::moe_all_to_all(MoePhase phase, double bytes_per_rank, double imbalance, int ranks,
                                   int nodes) const {
  const Fit* best = nullptr;
  for (const auto& f : profile_.fits) {
    const auto* a = std::get_if<AllToAllFit>(&f.model);
    if (a && a->phase == phase && (!best || preference(f) < preference(*best))) best = &f;
  }
  if (!best) return moe_exchange_from_collectives(bytes_per_rank, imbalance, ranks, nodes);
  const auto& a = std::get<AllToAllFit>(best->model);
  double t = linear_form(a.coefficients, all_to_all_features(bytes_per_rank, imbalance, ranks, gpus_per_node_));
  return priced(*best, t, false,
                beyond(*best, {{"ranks", static_cast<double>(ranks)}, {"bytes_per_rank", bytes_per_rank}}));
}

PricedOp CostModel::moe_exchange_from_collectives(double bytes_per_rank, double imbalance, int ranks,
                                                  int nodes) const {
  // Without a MoE fit: the NVLink part as an all-to-all of the node's GPUs and the network part
  // as each GPU's traffic through its own NIC (an all-to-all of two ranks on two nodes), sized
  // in nccl-tests' convention (the per-rank buffer) so each rank sends what it routes. The two
  // run at once; the slower sets the time (nccl-tests #130, #267: with NVLink and one NIC per
  // GPU, an all-to-all across nodes runs at about the per-GPU NIC bandwidth).
  // EP ranks that share a node: strided groups (EP over TP) hold fewer than the node's GPUs.
  const int local = nodes > 0 ? std::max(1, ranks / nodes) : std::min(ranks, std::max(1, gpus_per_node_));
  const ExchangeBytes b = exchange_bytes(bytes_per_rank, imbalance, ranks, local);
  PricedOp intra{0.0, false, false, "no peers in the node"};
  if (local > 1) intra = collective(CollectiveKind::kAllToAll, b.nvlink * local / (local - 1), local, 1);
  PricedOp network{0.0, false, false, "one node"};
  if (ranks > local) network = collective(CollectiveKind::kAllToAll, 2 * b.network, 2, 2);
  PricedOp p = intra.seconds >= network.seconds ? intra : network;
  p.extrapolated = true;
  p.roofline_default = intra.roofline_default || network.roofline_default;
  p.basis = fmt::format("EP exchange: {} inside the node, {} per NIC", intra.basis, network.basis);
  return p;
}

PricedOp CostModel::overlapped(OverlapPattern pattern, double gemm_s, double comm_s) const {
  const Fit* best = nullptr;
  for (const auto& f : profile_.fits) {
    const auto* o = std::get_if<OverlapFit>(&f.model);
    if (o && o->pattern == pattern && (!best || preference(f) < preference(*best))) best = &f;
  }
  if (!best) {
    // Not measured: no overlap assumed (sequential), flagged.
    PricedOp sequential;
    sequential.seconds = gemm_s + comm_s;
    sequential.extrapolated = true;
    sequential.roofline_default = true;
    sequential.basis = "no overlap fit: sequential";
    return sequential;
  }
  const auto& o = std::get<OverlapFit>(best->model);
  double t = std::max(linear_form(o.coefficients, overlap_features(gemm_s, comm_s)), std::max(gemm_s, comm_s));
  return priced(*best, t, false,
                gemm_s > 0 ? beyond(*best, {{"comm_over_gemm", comm_s / gemm_s}}) : std::vector<RangeExcess>{});
}

PricedOp CostModel::memory_bound(double bytes, std::string_view kernel) const {
  const std::string own = kernel.empty() ? std::string() : fmt::format("memory/{}", kernel);
  const Fit* best = nullptr;
  for (const auto& f : profile_.fits) {
    if (!std::holds_alternative<MemoryFit>(f.model)) continue;
    if (f.id != "memory" && f.id != own) continue;
    // The kernel's own fit first, then measured before roofline.
    auto rank = [&](const Fit& g) { return (g.id == own ? 0 : 10) + preference(g); };
    if (!best || rank(f) < rank(*best)) best = &f;
  }
  if (!best) missing("memory-bound kernels", "measure a copy kernel, or refit with --cluster");
  const auto& m = std::get<MemoryFit>(best->model);
  return priced(*best, alpha_beta_time_s(m.segments, bytes), false, beyond(*best, {{"bytes", bytes}}));
}

const Fit* CostModel::serve_iteration(const std::string& model, std::int64_t tensor_parallel_size, ServePhase phase,
                                     Dtype dtype) const {
  auto sixteen = [](Dtype d) { return d == Dtype::kBf16 ? Dtype::kFp16 : d; };
  for (const auto& f : profile_.fits) {
    const auto* s = std::get_if<ServeIterationFit>(&f.model);
    if (s && s->model == model && s->tensor_parallel_size == tensor_parallel_size && s->phase == phase &&
        sixteen(s->dtype) == sixteen(dtype)) {
      return &f;
    }
  }
  return nullptr;
}

}  // namespace clustersim
