#include "models/planning/ecmp_send_factor.hpp"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "models/cost/ecmp_collisions.hpp"

namespace clustersim {

double expected_ecmp_send_factor(const ParallelLayout& l, const ClusterSpec& cluster) {
  const FabricSpec& f = cluster.fabric;
  if (f.routing != "ecmp" || l.pp < 2 || f.uplinks_per_leaf < 1 || f.flows_per_peer < 1) return 1.0;
  const std::int64_t gpn = cluster.node.gpus_per_node, rails = cluster.node.nics_per_node;
  const std::int64_t per_leaf = f.nodes_per_leaf;
  const auto flows = static_cast<int>(f.flows_per_peer);
  auto rank = [&](std::int64_t t, std::int64_t cp, std::int64_t d, std::int64_t s) {
    return t + l.tp * (cp + l.cp * (d + l.dp * s));
  };
  // Flows per (direction, boundary, leaf group, rail) on the uplinks and downlinks.
  std::map<std::pair<std::int64_t, std::int64_t>, int> up, down;
  std::vector<int> balls;
  const std::int64_t boundaries = l.virtual_stages > 1 ? l.pp : l.pp - 1;  // interleaving wraps around
  for (std::int64_t s = 0; s < boundaries; ++s) {
    for (int backward = 0; backward < 2; ++backward) {
      up.clear();
      down.clear();
      for (std::int64_t d = 0; d < l.dp; ++d) {
        for (std::int64_t cp = 0; cp < l.cp; ++cp) {
          for (std::int64_t t = 0; t < l.tp; ++t) {
            std::int64_t src = rank(t, cp, d, s), dst = rank(t, cp, d, (s + 1) % l.pp);
            if (backward) std::swap(src, dst);
            const std::int64_t src_node = src / gpn, dst_node = dst / gpn;
            if (src_node == dst_node) continue;
            const std::int64_t rail = (dst % gpn) * rails / gpn;  // PXN: the destination's rail
            const std::int64_t src_group = src_node / per_leaf, dst_group = dst_node / per_leaf;
            if (src_group == dst_group && (src % gpn) * rails / gpn == rail) continue;  // below one leaf
            up[{src_group, rail}] += flows;
            down[{dst_group, rail}] += flows;
          }
        }
      }
      for (const auto& [key, n] : up) balls.push_back(n);
      for (const auto& [key, n] : down) balls.push_back(n);
    }
  }
  const double nic = cluster.node.nic_bandwidth_bytes_per_s;
  const double uplink = static_cast<double>(per_leaf) * nic / f.leaf_oversubscription / static_cast<double>(f.uplinks_per_leaf);
  return expected_max_load_factor(balls, static_cast<int>(f.uplinks_per_leaf), nic / (flows * uplink));
}

}  // namespace clustersim
