#include "sim/platform/collective_flows.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace clustersim::sim {

namespace {

std::uint32_t index32(std::size_t v) { return static_cast<std::uint32_t>(v); }

}  // namespace

std::int64_t ring_steps(RingCollective kind, std::int64_t group_size) {
  return kind == RingCollective::kAllReduce ? 2 * (group_size - 1) : group_size - 1;
}

double ring_bytes_per_hop(RingCollective kind, std::int64_t group_size, double bytes_per_rank) {
  return static_cast<double>(ring_steps(kind, group_size)) * bytes_per_rank /
         static_cast<double>(group_size);
}

double ring_closed_form_s(RingCollective kind, std::int64_t group_size, double bytes_per_rank,
                          double hop_latency_s, double hop_bandwidth_bytes_per_s) {
  return static_cast<double>(ring_steps(kind, group_size)) *
         (hop_latency_s + bytes_per_rank / static_cast<double>(group_size) / hop_bandwidth_bytes_per_s);
}

void append_ring(RingCollective kind, RingEncoding encoding, std::span<const std::int64_t> group,
                 double bytes_per_rank, double hop_latency_s, std::vector<PlanPhase>& phases,
                 std::vector<PlanFlow>& flows) {
  const auto g = static_cast<std::int64_t>(group.size());
  if (g < 2) throw std::invalid_argument("a ring needs at least two ranks");
  const std::int64_t steps = ring_steps(kind, g);
  auto add_hops = [&](double bytes) {
    for (std::size_t i = 0; i < group.size(); ++i) {
      flows.push_back({static_cast<std::int32_t>(group[i]),
                       static_cast<std::int32_t>(group[(i + 1) % group.size()]), bytes});
    }
  };
  if (encoding == RingEncoding::kAggregated) {
    const std::size_t begin = flows.size();
    add_hops(ring_bytes_per_hop(kind, g, bytes_per_rank));
    phases.push_back({index32(begin), index32(flows.size()),
                      static_cast<double>(steps - 1) * hop_latency_s});
    return;
  }
  for (std::int64_t s = 0; s < steps; ++s) {
    const std::size_t begin = flows.size();
    add_hops(bytes_per_rank / static_cast<double>(g));
    phases.push_back({index32(begin), index32(flows.size()), 0.0});
  }
}

void append_all_to_all(const RailFabric& fabric, std::span<const std::int64_t> group,
                       double bytes_per_rank, std::vector<PlanPhase>& phases,
                       std::vector<PlanFlow>& flows) {
  const auto g = static_cast<double>(group.size());
  const double per_pair = bytes_per_rank / g;
  // Group ranks by node, keeping the group's order inside a node.
  std::vector<std::pair<std::int64_t, std::int64_t>> by_node;  // (node, gpu)
  by_node.reserve(group.size());
  for (std::int64_t gpu : group) by_node.emplace_back(fabric.node_of(gpu), gpu);
  std::stable_sort(by_node.begin(), by_node.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::size_t, std::size_t>> nodes;  // [begin, end) into by_node
  for (std::size_t i = 0; i < by_node.size();) {
    std::size_t j = i;
    while (j < by_node.size() && by_node[j].first == by_node[i].first) ++j;
    nodes.emplace_back(i, j);
    i = j;
  }
  const std::size_t begin = flows.size();
  const std::int64_t gpn = fabric.gpus_per_node();
  for (const auto& [a_begin, a_end] : nodes) {
    const std::int64_t node_a = by_node[a_begin].first;
    const auto n_a = static_cast<double>(a_end - a_begin);
    if (a_end - a_begin >= 2) {
      for (std::size_t k = a_begin; k < a_end; ++k) {
        const std::size_t next = k + 1 < a_end ? k + 1 : a_begin;
        flows.push_back({static_cast<std::int32_t>(by_node[k].second),
                         static_cast<std::int32_t>(by_node[next].second), (n_a - 1) * per_pair});
      }
    }
    for (const auto& [b_begin, b_end] : nodes) {
      if (b_begin == a_begin) continue;
      for (std::size_t k = b_begin; k < b_end; ++k) {
        const std::int64_t dst = by_node[k].second;
        const std::int64_t relay = node_a * gpn + (dst % gpn) % fabric.gpus_in_node(node_a);
        flows.push_back({static_cast<std::int32_t>(relay), static_cast<std::int32_t>(dst), n_a * per_pair});
      }
    }
  }
  phases.push_back({index32(begin), index32(flows.size()), 0.0});
}

}  // namespace clustersim::sim
