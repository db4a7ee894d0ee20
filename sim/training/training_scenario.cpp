#include "sim/training/training_scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "models/inputs/input_error.hpp"
#include "models/accounting/integer_division.hpp"
#include "models/inputs/json_reader.hpp"
#include "models/inputs/preset_path.hpp"
#include "sim/platform/rail_fabric.hpp"

namespace clustersim::sim {

namespace {

double peak_16bit(const GpuSpec& gpu) {
  auto peak = gpu.peak_flops_per_s(Dtype::kBf16);
  if (!peak) peak = gpu.peak_flops_per_s(Dtype::kFp16);
  return peak ? *peak : 0.0;
}

class ScenarioReader {
 public:
  ScenarioReader(Diagnostics& diag, std::string file, const ClusterSpec& cluster, std::int64_t world)
      : diag_(diag), file_(std::move(file)), cluster_(cluster), world_(world),
        nodes_((world + cluster.node.gpus_per_node - 1) / cluster.node.gpus_per_node),
        fabric_(cluster, world) {}

  TrainingScenario read(const nlohmann::json& doc) {
    TrainingScenario s;
    s.file = file_;
    JsonObjectReader root(diag_, file_, "", doc);
    if (!root.is_object()) return s;
    if (auto seed = root.integer("seed", 0, std::int64_t{1} << 62)) s.seed = static_cast<std::uint64_t>(*seed);
    each(root, "stragglers", [&](JsonObjectReader& r) { s.stragglers.push_back(straggler(r)); });
    each(root, "gpu_types", [&](JsonObjectReader& r) { s.gpu_types.push_back(gpu_type(r)); });
    each(root, "links", [&](JsonObjectReader& r) { s.links.push_back(link(r)); });
    each(root, "background", [&](JsonObjectReader& r) { background(r, s.background); });
    JsonObjectReader nf = root.object("node_failure", false);
    if (nf.is_object()) s.node_failure = node_failure(nf);
    root.allow({"description", "name"});
    root.reject_unknown_keys();
    return s;
  }

 private:
  template <typename F>
  void each(JsonObjectReader& root, std::string_view key, F&& f) {
    const nlohmann::json* list = root.raw(key);
    if (!list) return;
    const std::string pointer = root.pointer_of(key);
    if (!list->is_array()) {
      diag_.error(file_, pointer, fmt::format("expected an array, got {}", describe_json_value(*list)));
      return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      JsonObjectReader r(diag_, file_, json_pointer_append(pointer, i), (*list)[i]);
      if (!r.is_object()) continue;
      f(r);
      r.reject_unknown_keys();
    }
  }

  std::vector<std::int64_t> indices(JsonObjectReader& r, std::string_view key, std::int64_t limit, const char* what) {
    std::vector<std::int64_t> out;
    const nlohmann::json* list = r.raw(key);
    if (!list) return out;
    const std::string pointer = r.pointer_of(key);
    if (!list->is_array() || list->empty()) {
      diag_.error(file_, pointer, fmt::format("expected a non-empty array of {} indices", what));
      return out;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& v = (*list)[i];
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= limit) {
        diag_.error(file_, json_pointer_append(pointer, i),
                    fmt::format("expected a {} index in [0, {}), got {}", what, limit, describe_json_value(v)));
        continue;
      }
      out.push_back(v.get<std::int64_t>());
    }
    return out;
  }

  SlowdownDraw slowdown(JsonObjectReader& r) {
    SlowdownDraw d;
    const nlohmann::json* v = r.raw("slowdown");
    if (!v) {
      r.error("slowdown", "missing", "a factor >= 1 (1.2 = 20 % slower), or {\"distribution\": ...}");
      return d;
    }
    if (v->is_number()) {
      d.factor = r.number("slowdown", 1.0, 1000.0).value_or(1.0);
      return d;
    }
    JsonObjectReader o = r.object("slowdown", true);
    if (!o.is_object()) return d;
    auto kind = o.required_choice("distribution", {"uniform", "lognormal"}, "uniform (min, max) or lognormal (median, sigma)");
    if (kind == "uniform") {
      d.kind = SlowdownDraw::Kind::kUniform;
      d.min = o.required_number("min", 1.0, 1000.0, "the smallest factor, >= 1").value_or(1.0);
      d.max = o.required_number("max", 1.0, 1000.0, "the largest factor").value_or(1.0);
      if (d.max < d.min) o.error("max", fmt::format("{} is below min {}", d.max, d.min));
    } else if (kind == "lognormal") {
      d.kind = SlowdownDraw::Kind::kLognormal;
      d.median = o.required_number("median", 1.0, 1000.0, "the median factor, >= 1").value_or(1.0);
      d.sigma = o.required_number("sigma", 0.0, 10.0, "the standard deviation of ln(factor)").value_or(0.0);
    }
    o.reject_unknown_keys();
    return d;
  }

  StragglerSpec straggler(JsonObjectReader& r) {
    StragglerSpec s;
    s.pointer = r.pointer();
    s.ranks = indices(r, "ranks", world_, "rank");
    s.nodes = indices(r, "nodes", nodes_, "node");
    s.fraction_of_nodes = r.number("fraction_of_nodes", 0.0, 1.0).value_or(0.0);
    const int given = (r.has("ranks") ? 1 : 0) + (r.has("nodes") ? 1 : 0) + (r.has("fraction_of_nodes") ? 1 : 0);
    if (given != 1) {
      diag_.error(file_, r.pointer(), "give exactly one of ranks, nodes or fraction_of_nodes");
    }
    s.slowdown = slowdown(r);
    return s;
  }

  GpuTypeSpec gpu_type(JsonObjectReader& r) {
    GpuTypeSpec g;
    g.nodes = indices(r, "nodes", nodes_, "node");
    if (!r.has("nodes")) r.error("nodes", "missing", "the nodes that carry the other GPU type");
    const double base = peak_16bit(cluster_.gpu);
    if (r.has("cluster")) {
      const std::string name = r.string("cluster").value_or("");
      try {
        Diagnostics inner;
        ClusterSpec other = load_cluster_spec(resolve_input(name, "clusters", "cluster"), name, inner);
        inner.throw_if_errors();
        g.gpu_name = other.gpu.name;
        const double peak = peak_16bit(other.gpu);
        if (peak > 0) g.slowdown = std::max(1.0, base / peak);
      } catch (const InputErrors&) {
        r.error("cluster", fmt::format("no cluster preset or readable cluster file \"{}\"", name),
                "a preset such as a100-hdr, or a cluster JSON file");
      }
    } else if (auto peak = r.positive_number("peak_flops_per_s")) {
      g.gpu_name = "peak " + fmt::format("{:.4g}", *peak);
      g.slowdown = std::max(1.0, base / *peak);
    } else {
      diag_.error(file_, r.pointer(), "give cluster (a preset whose GPU the nodes carry) or peak_flops_per_s");
    }
    r.allow({"cluster", "peak_flops_per_s"});
    return g;
  }

  LinkChange link(JsonObjectReader& r) {
    LinkChange c;
    c.link = r.required_string("name").value_or("");
    if (!c.link.empty() && fabric_.find_link(c.link) < 0) {
      r.error("name", fmt::format("no link \"{}\" on this cluster", c.link),
              "names as nic_up.n<node>.r<rail>, nic_down.n3.r0, nvlink_up.g<gpu>, leaf_up.r<rail>.l<leaf>, "
              "leaf_down.r0.l1, spine.r<rail>");
    }
    c.failed = r.boolean("failed").value_or(false);
    c.at_s = r.number("at_s", 0.0, 1e9).value_or(0.0);
    if (r.has("bandwidth_factor")) {
      c.bandwidth_factor = r.number("bandwidth_factor", 1e-6, 1.0).value_or(1.0);
      if (c.failed) r.error("bandwidth_factor", "a failed link has no bandwidth factor");
    } else if (!c.failed) {
      r.error("bandwidth_factor", "missing", "a factor in (0, 1] (0.5 = half speed), or \"failed\": true");
    }
    if (c.failed && r.has("at_s")) r.error("at_s", "a failed link fails from the start", "degrade it with bandwidth_factor instead");
    return c;
  }

  void background(JsonObjectReader& r, std::vector<BackgroundTraffic>& out) {
    BackgroundTraffic b;
    b.src = r.required_integer("src", 0, world_ - 1).value_or(0);
    b.dst = r.required_integer("dst", 0, world_ - 1).value_or(0);
    b.bytes = r.required_positive_number("bytes").value_or(1);
    b.start_s = r.number("start_s", 0.0, 1e9).value_or(0.0);
    const std::int64_t repeat = r.integer("repeat", 1, 100000).value_or(1);
    const double period = r.number("period_s", 0.0, 1e9).value_or(0.0);
    if (repeat > 1 && !r.has("period_s")) r.error("period_s", "missing", "the time between repeats of the flow");
    for (std::int64_t i = 0; i < repeat; ++i) {
      out.push_back(b);
      out.back().start_s = b.start_s + static_cast<double>(i) * period;
    }
  }

  NodeFailureSpec node_failure(JsonObjectReader& r) {
    NodeFailureSpec f;
    f.node = r.required_integer("node", 0, nodes_ - 1).value_or(0);
    f.at_s = r.required_number("at_s", 0.0, 1e12, "seconds into the run when the node fails").value_or(0.0);
    f.steps = r.required_integer("steps", 1, std::int64_t{1} << 40).value_or(1);
    f.checkpoint_interval_steps = r.integer("checkpoint_interval_steps", 0, std::int64_t{1} << 40).value_or(0);
    f.checkpoint_write_s = r.number("checkpoint_write_s", 0.0, 1e9).value_or(0.0);
    f.restart_s = r.required_number("restart_s", 0.0, 1e9, "seconds to detect, replace the node and reload").value_or(0.0);
    r.reject_unknown_keys();
    return f;
  }

  Diagnostics& diag_;
  std::string file_;
  const ClusterSpec& cluster_;
  std::int64_t world_, nodes_;
  RailFabric fabric_;
};

// Deterministic draws (std distributions differ between standard libraries).
struct Draw {
  std::uint64_t state;
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {  // Box-Muller
    const double u = std::max(uniform(), 1e-300), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
  double factor(const SlowdownDraw& d) {
    switch (d.kind) {
      case SlowdownDraw::Kind::kFixed: return d.factor;
      case SlowdownDraw::Kind::kUniform: return d.min + (d.max - d.min) * uniform();
      case SlowdownDraw::Kind::kLognormal: return std::max(1.0, d.median * std::exp(d.sigma * normal()));
    }
    return d.factor;
  }
};

}  // namespace

TrainingScenario parse_training_scenario(const nlohmann::json& document, const std::string& file,
                                         const ClusterSpec& cluster, std::int64_t world) {
  Diagnostics diag;
  ScenarioReader reader(diag, file, cluster, world);
  TrainingScenario s = reader.read(document);
  diag.throw_if_errors();
  return s;
}

TrainingScenario read_training_scenario(const std::string& path, const ClusterSpec& cluster, std::int64_t world) {
  JsonDocument doc = read_json_document(path, "--scenario");
  return parse_training_scenario(doc.value, doc.file, cluster, world);
}

ReplayPerturbation resolve_scenario(const TrainingScenario& s, const ClusterSpec& cluster, std::int64_t world) {
  ReplayPerturbation p;
  const std::int64_t gpn = cluster.node.gpus_per_node;
  const std::int64_t nodes = ceil_div(world, gpn);
  Draw draw{s.seed};
  auto node_ranks = [&](std::int64_t node, double factor, const std::string& cause) {
    for (std::int64_t g = node * gpn; g < std::min(world, (node + 1) * gpn); ++g) p.slowdowns.push_back({g, factor, cause});
  };
  for (const auto& st : s.stragglers) {
    for (std::int64_t r : st.ranks) p.slowdowns.push_back({r, draw.factor(st.slowdown), "straggler"});
    for (std::int64_t n : st.nodes) node_ranks(n, draw.factor(st.slowdown), "straggler");
    if (st.fraction_of_nodes > 0) {
      // k distinct nodes by a partial Fisher-Yates shuffle.
      const auto k = std::max<std::int64_t>(1, std::llround(st.fraction_of_nodes * static_cast<double>(nodes)));
      std::vector<std::int64_t> order(static_cast<std::size_t>(nodes));
      for (std::int64_t i = 0; i < nodes; ++i) order[static_cast<std::size_t>(i)] = i;
      for (std::int64_t i = 0; i < std::min(k, nodes); ++i) {
        const auto j = i + static_cast<std::int64_t>(draw.uniform() * static_cast<double>(nodes - i));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(std::min(j, nodes - 1))]);
        node_ranks(order[static_cast<std::size_t>(i)], draw.factor(st.slowdown), "straggler");
      }
    }
  }
  for (const auto& g : s.gpu_types) {
    for (std::int64_t n : g.nodes) node_ranks(n, g.slowdown, "gpu_type");
  }
  p.links = s.links;
  p.background = s.background;
  return p;
}

FailureGoodput failure_goodput(const NodeFailureSpec& f, double step_time_s) {
  FailureGoodput g;
  const double T = step_time_s, N = static_cast<double>(f.steps);
  const double C = static_cast<double>(f.checkpoint_interval_steps);
  g.step_time_s = T;
  g.checkpoint_s = C > 0 ? std::floor(N / C) * f.checkpoint_write_s : 0.0;
  const double clean_wall = N * T + g.checkpoint_s;
  g.failure_within_run = f.at_s < clean_wall;
  if (g.failure_within_run) {
    // Training advances in cycles of C steps plus one checkpoint write; everything since the
    // last completed checkpoint is lost.
    const double cycle = C > 0 ? C * T + f.checkpoint_write_s : clean_wall;
    const double done_cycles = C > 0 ? std::floor(f.at_s / cycle) : 0.0;
    g.lost_s = f.at_s - done_cycles * cycle;
    g.steps_done_before_failure = done_cycles * C + std::min(C > 0 ? C : N, std::floor(g.lost_s / T));
    g.restart_s = f.restart_s;
  } else {
    g.steps_done_before_failure = N;
  }
  g.wall_s = clean_wall + g.lost_s + g.restart_s;
  g.goodput = N * T / g.wall_s;
  return g;
}

}  // namespace clustersim::sim
