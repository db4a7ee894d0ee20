#include "sim/whatif/trace_dependency_graph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "models/inputs/input_error.hpp"

namespace clustersim::sim {

using traces::StragglerOp;
using traces::StragglerOpType;
using Type = StragglerOpType;

std::string_view stream_name(TraceStream stream) {
  switch (stream) {
    case TraceStream::kCompute: return "compute";
    case TraceStream::kForwardSend: return "forward-send";
    case TraceStream::kForwardRecv: return "forward-recv";
    case TraceStream::kBackwardSend: return "backward-send";
    case TraceStream::kBackwardRecv: return "backward-recv";
    case TraceStream::kDataParallel: return "data-parallel comm";
    case TraceStream::kStepEnd: return "step end";
  }
  return "?";
}

namespace {

// Recorded times within a step count as equal within this (clock skew between workers); the
// value is the one the study's analyzer uses for matching sends/receives to compute ops.
constexpr double kMatchEpsilonS = 5e-5;

TraceStream stream_of(Type type) {
  switch (type) {
    case Type::kForwardCompute:
    case Type::kBackwardCompute: return TraceStream::kCompute;
    case Type::kForwardSend: return TraceStream::kForwardSend;
    case Type::kForwardRecv: return TraceStream::kForwardRecv;
    case Type::kBackwardSend: return TraceStream::kBackwardSend;
    case Type::kBackwardRecv: return TraceStream::kBackwardRecv;
    case Type::kParamsAllGather:
    case Type::kGradsReduceScatter:
    case Type::kSeparateGradsAllReduce: return TraceStream::kDataParallel;
    default: return TraceStream::kStepEnd;
  }
}

bool single_per_step(Type type) {
  return type == Type::kGc || type == Type::kLayernormGradsAllReduce ||
         type == Type::kEmbeddingGradsAllReduce || type == Type::kOptimizerClipMainGrad ||
         type == Type::kOptimizer;
}

}  // namespace

// Builds the graph in the study's model (docs/straggler-traces.md, "dependency model").
class TraceGraphBuilder {
 public:
  TraceGraphBuilder(const traces::StragglerTrace& trace, const traces::StragglerJobMeta& meta)
      : trace_(trace), meta_(meta) {}

  TraceDependencyGraph build() {
    g_.pp_size_ = meta_.pp_size;
    g_.dp_size_ = meta_.dp_size;
    collect_template_ops();
    diag_.throw_if_errors();
    build_index();
    has_peer_.assign(g_.ops_.size(), false);
    g_.data_parallel_comm_ = meta_.dp_size * meta_.dsp_size > 1 || count(Type::kParamsAllGather) > 0 ||
                             count(Type::kGradsReduceScatter) > 0;
    g_.overlapped_grad_reduce_ = count(Type::kSeparateGradsAllReduce) > 0;
    deps_.assign(g_.ops_.size(), {});
    for (int stage = 0; stage < meta_.pp_size; ++stage) {
      compute_chain(stage);
      pipeline_p2p(stage);
      first_backward_p2p(stage);
      if (g_.data_parallel_comm_) data_parallel(stage);
      step_end_chain(stage);
    }
    pair_p2p();
    collective_groups();
    diag_.throw_if_errors();
    flatten_deps();
    topological_order();
    write_notes();
    return std::move(g_);
  }

 private:
  std::string where(int stage) const {
    return fmt::format("step {}, dp_rank 0, stage {}", g_.template_step_, stage);
  }

  void collect_template_ops() {
    if (trace_.ops.empty()) {
      diag_.error(trace_.file, "", "the trace has no ops", "one row per op");
      return;
    }
    g_.template_step_ = std::numeric_limits<std::int64_t>::max();
    for (const StragglerOp& r : trace_.ops) g_.template_step_ = std::min(g_.template_step_, r.step);
    std::vector<const StragglerOp*> rows;
    for (const StragglerOp& r : trace_.ops) {
      if (r.step == g_.template_step_ && r.dp_rank == 0) rows.push_back(&r);
    }
    std::sort(rows.begin(), rows.end(), [](const StragglerOp* a, const StragglerOp* b) {
      return std::tuple(a->stage, a->optype, a->seq_id) < std::tuple(b->stage, b->optype, b->seq_id);
    });
    std::vector<bool> stage_seen(static_cast<std::size_t>(meta_.pp_size), false);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const StragglerOp& r = *rows[i];
      if (r.stage >= meta_.pp_size) {
        diag_.error(trace_.file, fmt::format("line {}, column stage", r.line),
                    fmt::format("stage {} but pp_size is {}", r.stage, meta_.pp_size),
                    "stages run from 0 to pp_size - 1; check the metadata");
        continue;
      }
      if (i > 0 && rows[i - 1]->stage == r.stage && rows[i - 1]->optype == r.optype &&
          rows[i - 1]->seq_id == r.seq_id) {
        diag_.error(trace_.file, fmt::format("line {}, column seq_id", r.line),
                    fmt::format("{} seq_id {} also on line {} (same step, dp_rank, stage)",
                                traces::op_type_name(r.optype), r.seq_id, rows[i - 1]->line),
                    "seq_id numbers the ops of one type on one worker in one step from 0");
        continue;
      }
      if (single_per_step(r.optype) && r.seq_id != 0) {
        diag_.error(trace_.file, fmt::format("line {}, column seq_id", r.line),
                    fmt::format("a second {} in one step", traces::op_type_name(r.optype)),
                    "gc, layernorm/embedding grads all-reduce, clip and optimizer occur once per "
                    "worker and step (seq_id 0)");
        continue;
      }
      if (r.mc >= meta_.vpp_size) {
        diag_.error(trace_.file, fmt::format("line {}, column mc", r.line),
                    fmt::format("model chunk {} but vpp_size is {}", r.mc, meta_.vpp_size),
                    "mc runs from 0 to vpp_size - 1, or -1 where not applicable");
        continue;
      }
      stage_seen[static_cast<std::size_t>(r.stage)] = true;
      TraceGraphOp op;
      op.optype = r.optype;
      op.stream = stream_of(r.optype);
      op.stage = r.stage;
      op.mc = r.mc;
      op.mb_id = r.mb_id;
      op.gmc = r.gmc;
      if (traces::is_compute(r.optype) && op.gmc < 0) {
        // Megatron numbers model chunks stage-fastest: chunk c of stage s is c * pp + s.
        op.gmc = static_cast<std::int16_t>(std::max<int>(op.mc, 0) * meta_.pp_size + r.stage);
      }
      op.seq_id = r.seq_id;
      g_.ops_.push_back(op);
      start_.push_back(r.start_s);
      end_.push_back(r.end_s());
    }
    for (int s = 0; s < meta_.pp_size; ++s) {
      if (!stage_seen[static_cast<std::size_t>(s)]) {
        diag_.error(trace_.file, where(s), "no ops of this stage in the first step of dp_rank 0",
                    fmt::format("every stage 0..{} must be in every step", meta_.pp_size - 1));
      }
    }
  }

  void build_index() {
    const std::size_t slots = static_cast<std::size_t>(meta_.pp_size) * traces::kStragglerOpTypeCount;
    std::vector<std::int32_t> max_seq(slots, -1);
    for (const auto& op : g_.ops_) {
      auto& m = max_seq[slot(op.stage, op.optype)];
      m = std::max(m, op.seq_id);
    }
    g_.index_begin_.assign(slots + 1, 0);
    for (std::size_t i = 0; i < slots; ++i) g_.index_begin_[i + 1] = g_.index_begin_[i] + max_seq[i] + 1;
    g_.index_.assign(static_cast<std::size_t>(g_.index_begin_.back()), -1);
    for (std::size_t id = 0; id < g_.ops_.size(); ++id) {
      const auto& op = g_.ops_[id];
      g_.index_[static_cast<std::size_t>(g_.index_begin_[slot(op.stage, op.optype)] + op.seq_id)] =
          static_cast<std::int32_t>(id);
    }
  }

  static std::size_t slot(int stage, Type type) {
    return static_cast<std::size_t>(stage) * traces::kStragglerOpTypeCount + static_cast<std::size_t>(type);
  }
  std::int32_t find(int stage, Type type, int seq_id) const { return g_.find(stage, type, seq_id); }
  std::size_t count(Type type) const {
    return static_cast<std::size_t>(std::count_if(g_.ops_.begin(), g_.ops_.end(),
                                                  [&](const TraceGraphOp& op) { return op.optype == type; }));
  }

  // Ops of a stage with one of `types`, in recorded order (start, seq_id, type name).
  std::vector<std::int32_t> sorted(int stage, std::initializer_list<Type> types) const {
    std::vector<std::int32_t> ids;
    for (std::size_t id = 0; id < g_.ops_.size(); ++id) {
      const auto& op = g_.ops_[id];
      if (op.stage != stage) continue;
      if (std::find(types.begin(), types.end(), op.optype) == types.end()) continue;
      ids.push_back(static_cast<std::int32_t>(id));
    }
    std::sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) {
      return std::tuple(start_[a], g_.ops_[a].seq_id, traces::op_type_name(g_.ops_[a].optype)) <
             std::tuple(start_[b], g_.ops_[b].seq_id, traces::op_type_name(g_.ops_[b].optype));
    });
    return ids;
  }

  void depend(std::int32_t op, std::int32_t on) {
    if (op >= 0 && on >= 0) deps_[static_cast<std::size_t>(op)].push_back(on);
  }
  void chain(const std::vector<std::int32_t>& ids) {
    for (std::size_t i = 1; i < ids.size(); ++i) depend(ids[i], ids[i - 1]);
  }

  void compute_chain(int stage) { chain(sorted(stage, {Type::kForwardCompute, Type::kBackwardCompute})); }

  // Each p2p type is its own stream; a send follows the compute whose output it carries; a
  // receive feeds the matching compute and waits for the compute before that one.
  void pipeline_p2p(int stage) {
    for (Type t : {Type::kForwardSend, Type::kForwardRecv, Type::kBackwardSend, Type::kBackwardRecv}) {
      chain(sorted(stage, {t}));
    }
    for (bool forward : {true, false}) {
      const Type compute = forward ? Type::kForwardCompute : Type::kBackwardCompute;
      std::vector<std::int32_t> computes = sorted(stage, {compute});
      double last_compute_start = -std::numeric_limits<double>::infinity();
      double first_compute_end = std::numeric_limits<double>::infinity();
      for (auto c : computes) {
        last_compute_start = std::max(last_compute_start, start_[c]);
        first_compute_end = std::min(first_compute_end, end_[c]);
      }
      for (bool send : {true, false}) {
        const Type type = forward ? (send ? Type::kForwardSend : Type::kForwardRecv)
                                  : (send ? Type::kBackwardSend : Type::kBackwardRecv);
        std::vector<std::int32_t> comms = sorted(stage, {type});
        // Sends before the first compute ends / receives after the last compute starts were
        // recorded without being issued: no-ops with no compute to match.
        auto issued = [&](std::int32_t id) {
          return send ? end_[id] >= first_compute_end - kMatchEpsilonS
                      : start_[id] <= last_compute_start + kMatchEpsilonS;
        };
        std::size_t n_issued = static_cast<std::size_t>(std::count_if(comms.begin(), comms.end(), issued));
        int compute_id = 0;
        if (n_issued != computes.size()) {
          const bool edge_stage = stage == 0 || stage == meta_.pp_size - 1;
          if (!edge_stage || (n_issued != 0 && n_issued + 1 != computes.size())) {
            diag_.error(trace_.file, where(stage),
                        fmt::format("{} {} ops match {} {} ops", n_issued,
                                    traces::op_type_name(type), computes.size(),
                                    traces::op_type_name(compute)),
                        "one send/receive per compute op, except on the first and last stage");
            continue;
          }
          if (!send && n_issued + 1 == computes.size()) compute_id = 1;  // first one not recorded
        }
        for (auto id : comms) {
          if (!issued(id)) continue;
          const std::int32_t matched = find(stage, compute, compute_id);
          if (matched < 0) {
            diag_.error(trace_.file, where(stage),
                        fmt::format("{} seq_id {} has no {} seq_id {} to match",
                                    traces::op_type_name(type), g_.ops_[id].seq_id,
                                    traces::op_type_name(compute), compute_id),
                        "compute ops of one type are numbered from 0 by seq_id");
            break;
          }
          // Towards a model chunk that does not exist: recorded, but nobody at the other end.
          const int delta = (forward == send) ? 1 : -1;
          const int peer_gmc = g_.ops_[matched].gmc + delta;
          const bool peerless = peer_gmc < 0 || peer_gmc >= meta_.vpp_size * meta_.pp_size;
          if (!peerless) has_peer_[id] = true;
          if (send) {
            depend(id, matched);
          } else {
            depend(matched, id);
            depend(id, find(stage, compute, compute_id - 1));
          }
          ++compute_id;
        }
      }
    }
  }

  // The first backward send/receive also waits for the forward two places before the first
  // backward compute (the 1F1B steady state starts there).
  void first_backward_p2p(int stage) {
    std::vector<std::int32_t> computes = sorted(stage, {Type::kForwardCompute, Type::kBackwardCompute});
    auto first_bwd = std::find_if(computes.begin(), computes.end(), [&](std::int32_t id) {
      return g_.ops_[id].optype == Type::kBackwardCompute;
    });
    if (first_bwd == computes.end() || first_bwd - computes.begin() < 2) return;
    if (g_.ops_[*(first_bwd - 1)].optype != Type::kForwardCompute ||
        g_.ops_[*(first_bwd - 2)].optype != Type::kForwardCompute) {
      return;  // not reachable: the op before the first backward is a forward
    }
    const std::int32_t forward = *(first_bwd - 2);
    depend(find(stage, Type::kBackwardRecv, 0), forward);
    depend(find(stage, Type::kBackwardSend, 0), forward);
  }

  void data_parallel(int stage) {
    chain(sorted(stage, {Type::kParamsAllGather, Type::kGradsReduceScatter}));
    // The last parameter all-gather of each model chunk precedes that chunk's first forward.
    std::vector<std::int32_t> gathers = sorted(stage, {Type::kParamsAllGather});
    std::sort(gathers.begin(), gathers.end(),
              [&](std::int32_t a, std::int32_t b) { return g_.ops_[a].seq_id > g_.ops_[b].seq_id; });
    std::vector<std::int32_t> computes = sorted(stage, {Type::kForwardCompute, Type::kBackwardCompute});
    std::set<int> chunks_done;
    for (auto ag : gathers) {
      const int mc = g_.ops_[ag].mc;
      if (!chunks_done.insert(mc).second) continue;
      for (auto c : computes) {  // sorted by start: the first forward of the chunk
        if (g_.ops_[c].optype == Type::kForwardCompute && g_.ops_[c].mc == mc) {
          depend(c, ag);
          break;
        }
      }
    }
    if (!g_.overlapped_grad_reduce_) return;
    // Overlapped gradient reduction: each chunk's first reduce-scatter follows its last backward.
    std::vector<std::int32_t> scatters = sorted(stage, {Type::kGradsReduceScatter});
    std::sort(scatters.begin(), scatters.end(),
              [&](std::int32_t a, std::int32_t b) { return g_.ops_[a].seq_id < g_.ops_[b].seq_id; });
    chunks_done.clear();
    for (auto rs : scatters) {
      const int mc = g_.ops_[rs].mc;
      if (!chunks_done.insert(mc).second) continue;
      std::int32_t last = -1;
      for (auto c : computes) {
        if (g_.ops_[c].optype != Type::kBackwardCompute || g_.ops_[c].mc != mc) continue;
        if (last < 0 || end_[c] > end_[last]) last = c;
      }
      depend(rs, last);
    }
  }

  // gc after the last compute, then layernorm all-reduce, embedding all-reduce (first and last
  // stage), the reduce-scatters (unless overlapped), clip, optimizer.
  void step_end_chain(int stage) {
    std::vector<std::int32_t> computes = sorted(stage, {Type::kForwardCompute, Type::kBackwardCompute});
    std::int32_t last_compute = -1;
    for (auto c : computes) {
      if (last_compute < 0 || end_[c] > end_[last_compute]) last_compute = c;
    }
    const std::int32_t gc = find(stage, Type::kGc, 0);
    depend(gc, last_compute);
    std::vector<std::int32_t> before{gc >= 0 ? gc : last_compute};
    std::vector<std::int32_t> chain_ids{find(stage, Type::kLayernormGradsAllReduce, 0)};
    if (stage == 0 || stage == meta_.pp_size - 1) {
      chain_ids.push_back(find(stage, Type::kEmbeddingGradsAllReduce, 0));
    }
    std::vector<std::int32_t> scatters = sorted(stage, {Type::kGradsReduceScatter});
    std::sort(scatters.begin(), scatters.end(),
              [&](std::int32_t a, std::int32_t b) { return g_.ops_[a].seq_id < g_.ops_[b].seq_id; });
    if (g_.overlapped_grad_reduce_) {
      if (!scatters.empty()) before.push_back(scatters.back());
      chain_ids.push_back(find(stage, Type::kSeparateGradsAllReduce, 0));
    } else {
      chain_ids.insert(chain_ids.end(), scatters.begin(), scatters.end());
    }
    chain_ids.push_back(find(stage, Type::kOptimizerClipMainGrad, 0));
    const std::int32_t optimizer = find(stage, Type::kOptimizer, 0);
    if (optimizer < 0) {
      diag_.error(trace_.file, where(stage), "no optimizer op",
                  "every worker records one optimizer op per step; it ends the step");
    }
    chain_ids.push_back(optimizer);
    std::erase(chain_ids, -1);
    if (chain_ids.empty()) return;
    for (auto b : before) depend(chain_ids.front(), b);
    chain(chain_ids);
  }

  // The k-th issued forward-send of stage s pairs with the k-th issued forward-recv of the next
  // stage (the stage after the last one is stage 0, holding the next model chunk); backward
  // likewise in the other direction.
  void pair_p2p() {
    std::map<std::tuple<bool, int, int>, std::vector<std::int32_t>> pairs;  // (forward, sender, k)
    const int pp = meta_.pp_size;
    for (int stage = 0; stage < pp; ++stage) {
      for (Type t : {Type::kForwardSend, Type::kForwardRecv, Type::kBackwardSend, Type::kBackwardRecv}) {
        const bool forward = t == Type::kForwardSend || t == Type::kForwardRecv;
        const bool send = t == Type::kForwardSend || t == Type::kBackwardSend;
        const int sender = send ? stage : (stage + (forward ? -1 : 1) + pp) % pp;
        int k = 0;
        for (auto id : sorted(stage, {t})) {
          if (has_peer_[id]) {
            pairs[{forward, sender, k++}].push_back(id);
          } else {
            new_group({id}, false);
          }
        }
      }
    }
    for (const auto& [key, members] : pairs) {
      if (members.size() != 2) {
        const auto& op = g_.ops_[members.front()];
        diag_.error(trace_.file, where(op.stage),
                    fmt::format("{} seq_id {} has no partner on the neighbouring stage",
                                traces::op_type_name(op.optype), op.seq_id),
                    "the k-th send of a stage pairs with the k-th receive of its neighbour");
        continue;
      }
      new_group(members, false);
    }
  }

  void collective_groups() {
    const int pp = meta_.pp_size;
    if (g_.data_parallel_comm_) {
      for (std::size_t id = 0; id < g_.ops_.size(); ++id) {
        if (g_.ops_[id].stream == TraceStream::kDataParallel) {
          new_group({static_cast<std::int32_t>(id)}, true);
        }
      }
    }
    std::vector<std::int32_t> embedding;
    for (int stage : {0, pp - 1}) {
      auto id = find(stage, Type::kEmbeddingGradsAllReduce, 0);
      if (id >= 0 && (embedding.empty() || embedding.front() != id)) embedding.push_back(id);
    }
    if (!embedding.empty()) new_group(embedding, false);
    std::vector<std::int32_t> clip;
    for (int stage = 0; stage < pp; ++stage) {
      auto id = find(stage, Type::kOptimizerClipMainGrad, 0);
      if (id >= 0) clip.push_back(id);
    }
    if (!clip.empty()) new_group(clip, true);
  }

  void new_group(std::vector<std::int32_t> members, bool dp_sync) {
    const auto gid = static_cast<std::int32_t>(g_.groups_.size());
    for (auto m : members) g_.ops_[static_cast<std::size_t>(m)].group = gid;
    g_.groups_.push_back({std::move(members), dp_sync});
  }

  void flatten_deps() {
    g_.dep_begin_.assign(1, 0);
    for (auto& d : deps_) {
      std::sort(d.begin(), d.end());
      d.erase(std::unique(d.begin(), d.end()), d.end());
      g_.deps_.insert(g_.deps_.end(), d.begin(), d.end());
      g_.dep_begin_.push_back(static_cast<std::int32_t>(g_.deps_.size()));
    }
  }

  // Kahn's algorithm over units (local ops and whole groups), in a deterministic order.
  void topological_order() {
    const std::size_t n = g_.ops_.size();
    std::vector<std::int32_t> unit_of(n, -1);
    std::vector<TraceReplayUnit> units;
    std::vector<std::int32_t> group_unit(g_.groups_.size(), -1);
    for (std::size_t id = 0; id < n; ++id) {
      const auto gid = g_.ops_[id].group;
      if (gid < 0) {
        unit_of[id] = static_cast<std::int32_t>(units.size());
        units.push_back({static_cast<std::int32_t>(id), false});
      } else {
        if (group_unit[gid] < 0) {
          group_unit[gid] = static_cast<std::int32_t>(units.size());
          units.push_back({gid, true});
        }
        unit_of[id] = group_unit[gid];
      }
    }
    std::vector<std::vector<std::int32_t>> successors(units.size());
    std::vector<std::int32_t> pending(units.size(), 0);
    for (std::size_t id = 0; id < n; ++id) {
      for (auto d : g_.deps(id)) {
        const auto from = unit_of[d], to = unit_of[id];
        if (from == to) continue;
        successors[from].push_back(to);
        ++pending[to];
      }
    }
    std::deque<std::int32_t> ready;
    for (std::size_t u = 0; u < units.size(); ++u) {
      if (pending[u] == 0) ready.push_back(static_cast<std::int32_t>(u));
    }
    while (!ready.empty()) {
      const auto u = ready.front();
      ready.pop_front();
      g_.order_.push_back(units[u]);
      for (auto v : successors[u]) {
        if (--pending[v] == 0) ready.push_back(v);
      }
    }
    if (g_.order_.size() != units.size()) {
      std::string stuck;
      int shown = 0;
      for (std::size_t id = 0; id < n && shown < 4; ++id) {
        if (pending[unit_of[id]] == 0) continue;
        stuck += fmt::format("{}{} seq_id {} on stage {}", shown ? ", " : "",
                             traces::op_type_name(g_.ops_[id].optype), g_.ops_[id].seq_id,
                             g_.ops_[id].stage);
        ++shown;
      }
      throw_input_error(trace_.file, fmt::format("step {}, dp_rank 0", g_.template_step_),
                        "the dependency graph rebuilt from this step has a cycle through " + stuck,
                        "the recorded order of sends, receives and compute ops is inconsistent");
    }
  }

  void write_notes() {
    auto& notes = g_.notes_;
    notes.push_back(fmt::format(
        "graph built from step {} of dp_rank 0 and assumed identical for every dp rank and step",
        g_.template_step_));
    if (meta_.tp_size * meta_.dsp_size > 1) {
      notes.push_back(fmt::format(
          "only one rank per TP x CP group is in the trace (tp_size {}, dsp_size {}): each op "
          "stands for its group; the {} other ranks of each group are not invented",
          meta_.tp_size, meta_.dsp_size, meta_.tp_size * meta_.dsp_size - 1));
      notes.push_back(
          "layernorm-grads-all-reduce is a TP-group collective whose peers are not recorded: "
          "replayed as a local op");
    }
    if (meta_.dsp_size > 1) {
      notes.push_back(fmt::format(
          "data-parallel collectives span dp_size x dsp_size = {} ranks; they synchronise the {} "
          "recorded dp ranks",
          meta_.dp_size * meta_.dsp_size, meta_.dp_size));
    }
    notes.push_back(
        meta_.vpp_size > 1
            ? "VPP: sends/receives pair by global model chunk (gmc); interleaved schedules are "
              "not validated against published results"
            : "VPP = 1: sends/receives pair between neighbouring stages");
    if (g_.overlapped_grad_reduce_) {
      notes.push_back("overlapped gradient reduction (separate-grads-all-reduce present)");
    }
  }

  const traces::StragglerTrace& trace_;
  const traces::StragglerJobMeta& meta_;
  Diagnostics diag_;
  TraceDependencyGraph g_;
  std::vector<double> start_, end_;  // recorded times of the template ops
  std::vector<std::vector<std::int32_t>> deps_;
  std::vector<bool> has_peer_;  // p2p ops issued towards an existing model chunk
};

std::int32_t TraceDependencyGraph::find(int stage, traces::StragglerOpType type, int seq_id) const {
  if (stage < 0 || stage >= pp_size_ || seq_id < 0) return -1;
  const std::size_t s = static_cast<std::size_t>(stage) * traces::kStragglerOpTypeCount +
                        static_cast<std::size_t>(type);
  if (s + 1 >= index_begin_.size()) return -1;
  const std::int32_t at = index_begin_[s] + seq_id;
  return at < index_begin_[s + 1] ? index_[static_cast<std::size_t>(at)] : -1;
}

TraceDependencyGraph TraceDependencyGraph::build(const traces::StragglerTrace& trace,
                                                 const traces::StragglerJobMeta& meta) {
  return TraceGraphBuilder(trace, meta).build();
}

}  // namespace clustersim::sim
