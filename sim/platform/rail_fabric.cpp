#include "sim/platform/rail_fabric.hpp"

#include <limits>
#include <stdexcept>

#include "models/accounting/integer_division.hpp"

namespace clustersim::sim {

RailFabric::RailFabric(const ClusterSpec& cluster, std::int64_t gpus, std::uint64_t ecmp_seed) {
  const NodeSpec& node = cluster.node;
  const FabricSpec& fabric = cluster.fabric;
  if (fabric.topology != "rail_optimized_fat_tree") {
    throw std::invalid_argument("fabric topology '" + fabric.topology +
                                "' is not simulated; only rail_optimized_fat_tree is");
  }
  if (gpus < 1 || node.gpus_per_node < 1 || node.nics_per_node < 1 || fabric.nodes_per_leaf < 1) {
    throw std::invalid_argument("a fabric needs gpus, gpus_per_node, nics_per_node and nodes_per_leaf >= 1");
  }
  if (node.nvlink_bandwidth_bytes_per_s <= 0 || node.nic_bandwidth_bytes_per_s <= 0 ||
      node.nvlink_latency_s < 0 || node.nic_latency_s < 0 || fabric.switch_latency_s < 0 ||
      fabric.leaf_oversubscription < 1 || fabric.spine_oversubscription < 1) {
    throw std::invalid_argument(
        "a fabric needs bandwidths > 0, latencies >= 0 and oversubscription ratios >= 1");
  }
  gpus_ = gpus;
  gpus_per_node_ = node.gpus_per_node;
  nodes_ = ceil_div(gpus, gpus_per_node_);
  rails_ = node.nics_per_node;
  nics_ = nodes_ * rails_;
  nodes_per_leaf_ = fabric.nodes_per_leaf;
  leaf_groups_ = ceil_div(nodes_, nodes_per_leaf_);
  leaves_ = rails_ * leaf_groups_;
  spine_links_ = (fabric.spine_oversubscription > 1 && leaf_groups_ > 1) ? rails_ : 0;
  ecmp_ = fabric.routing == "ecmp";
  if (ecmp_) {
    if (fabric.uplinks_per_leaf < 1 || fabric.flows_per_peer < 1) {
      throw std::invalid_argument("ECMP routing needs uplinks_per_leaf and flows_per_peer >= 1");
    }
    uplinks_ = fabric.uplinks_per_leaf;
    flows_per_peer_ = fabric.flows_per_peer;
    ecmp_seed_ = ecmp_seed;
  }
  nvlink_bw_ = node.nvlink_bandwidth_bytes_per_s;
  nvlink_lat_ = node.nvlink_latency_s;
  nic_bw_ = node.nic_bandwidth_bytes_per_s;
  nic_lat_ = node.nic_latency_s;
  switch_lat_ = fabric.switch_latency_s;
  // A leaf switch is built for nodes_per_leaf NIC ports even when its group is partial.
  leaf_bw_ = static_cast<double>(nodes_per_leaf_) * nic_bw_ / fabric.leaf_oversubscription;
  spine_bw_ = static_cast<double>(leaf_groups_) * leaf_bw_ / fabric.spine_oversubscription;
  hbm_bw_ = cluster.gpu.hbm_bandwidth_bytes_per_s > 0 ? cluster.gpu.hbm_bandwidth_bytes_per_s : nvlink_bw_;
  if (2 * gpus_ + 2 * nics_ + 2 * leaves_ * uplinks_ + spine_links_ + 1 >
      std::numeric_limits<std::int32_t>::max()) {
    throw std::invalid_argument("fabric has more links than 32-bit link ids can number");
  }
}

RailFabric::~RailFabric() = default;
RailFabric::RailFabric(RailFabric&&) noexcept = default;
RailFabric& RailFabric::operator=(RailFabric&&) noexcept = default;

std::int64_t RailFabric::gpus_in_node(std::int64_t node) const {
  return node < nodes_ - 1 ? gpus_per_node_ : gpus_ - (nodes_ - 1) * gpus_per_node_;
}

std::int64_t RailFabric::rail_of(std::int64_t gpu) const {
  return (gpu % gpus_per_node_) * rails_ / gpus_per_node_;
}

FabricLink RailFabric::link(std::int32_t link_id) const {
  std::int64_t i = link_id;
  if (i < 0 || i >= link_count()) throw std::out_of_range("no fabric link " + std::to_string(link_id));
  // Latencies split so that a route's latency is the sum of its links': NVLink hop = nvlink
  // latency; same leaf = 2 NIC + 1 switch; across leaves = 2 NIC + 3 switches.
  if (i < gpus_) return {FabricLinkKind::kNvlinkUp, i, nvlink_bw_, nvlink_lat_ / 2, true};
  if ((i -= gpus_) < gpus_) return {FabricLinkKind::kNvlinkDown, i, nvlink_bw_, nvlink_lat_ / 2, true};
  i -= gpus_;
  if (i < nics_) return {FabricLinkKind::kNicUp, i, nic_bw_, nic_lat_ + switch_lat_ / 2, true};
  if ((i -= nics_) < nics_) return {FabricLinkKind::kNicDown, i, nic_bw_, nic_lat_ + switch_lat_ / 2, true};
  i -= nics_;
  // A leaf's uplink bandwidth split over its planes (one bundle with adaptive routing).
  const double plane_bw = leaf_bw_ / static_cast<double>(uplinks_);
  if (i < leaves_ * uplinks_) return {FabricLinkKind::kLeafUp, i, plane_bw, switch_lat_, true};
  if ((i -= leaves_ * uplinks_) < leaves_ * uplinks_) return {FabricLinkKind::kLeafDown, i, plane_bw, switch_lat_, true};
  i -= leaves_ * uplinks_;
  if (i < spine_links_) return {FabricLinkKind::kSpine, i, spine_bw_, 0.0, true};
  return {FabricLinkKind::kLoopback, 0, hbm_bw_, 0.0, false};
}

std::string RailFabric::link_name(std::int32_t link_id) const {
  const FabricLink l = link(link_id);
  const std::string i = std::to_string(l.index);
  switch (l.kind) {
    case FabricLinkKind::kNvlinkUp: return "nvlink_up.g" + i;
    case FabricLinkKind::kNvlinkDown: return "nvlink_down.g" + i;
    case FabricLinkKind::kNicUp:
    case FabricLinkKind::kNicDown:
      return std::string(l.kind == FabricLinkKind::kNicUp ? "nic_up" : "nic_down") + ".n" +
             std::to_string(l.index / rails_) + ".r" + std::to_string(l.index % rails_);
    case FabricLinkKind::kLeafUp:
    case FabricLinkKind::kLeafDown: {
      const std::int64_t leaf = l.index / uplinks_;
      std::string name = std::string(l.kind == FabricLinkKind::kLeafUp ? "leaf_up" : "leaf_down") + ".r" +
                         std::to_string(leaf / leaf_groups_) + ".l" + std::to_string(leaf % leaf_groups_);
      if (ecmp_) name += ".u" + std::to_string(l.index % uplinks_);
      return name;
    }
    case FabricLinkKind::kSpine: return "spine.r" + i;
    case FabricLinkKind::kLoopback: break;
  }
  return "loopback";
}

std::int32_t RailFabric::find_link(std::string_view name) const {
  if (!names_) {
    names_ = std::make_unique<std::unordered_map<std::string, std::int32_t>>();
    names_->reserve(static_cast<std::size_t>(link_count()));
    for (std::int64_t i = 0; i < link_count(); ++i) names_->emplace(link_name(id(i)), id(i));
  }
  auto it = names_->find(std::string(name));
  return it == names_->end() ? -1 : it->second;
}

void RailFabric::push(FabricRoute& r, std::int32_t link_id) const {
  r.links[static_cast<std::size_t>(r.size++)] = link_id;
  r.latency_s += link(link_id).latency_s;
}

// splitmix64 of the pair, connection and seed: the switch's hash as a uniform draw.
std::int64_t RailFabric::plane_of(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow) const {
  if (uplinks_ == 1) return 0;
  std::uint64_t z = ecmp_seed_ ^ (static_cast<std::uint64_t>(src_gpu) * 0x9e3779b97f4a7c15ULL) ^
                    (static_cast<std::uint64_t>(dst_gpu) * 0xc2b2ae3d27d4eb4fULL) ^
                    (static_cast<std::uint64_t>(flow) * 0x165667b19e3779f9ULL);
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<std::int64_t>(z % static_cast<std::uint64_t>(uplinks_));
}

void RailFabric::append_network(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow, FabricRoute& r) const {
  const std::int64_t src_rail = rail_of(src_gpu), dst_rail = rail_of(dst_gpu);
  const std::int64_t src_group = leaf_group_of_node(node_of(src_gpu));
  const std::int64_t dst_group = leaf_group_of_node(node_of(dst_gpu));
  push(r, nic_up(src_gpu));
  if (src_rail != dst_rail || src_group != dst_group) {
    const std::int64_t plane = plane_of(src_gpu, dst_gpu, flow);  // the same spine up and down
    push(r, leaf_up(src_rail, src_group, plane));
    if (spine_links_ > 0) push(r, spine(src_rail));
    push(r, leaf_down(dst_rail, dst_group, plane));
  }
  push(r, nic_down(dst_gpu));
}

FabricRoute RailFabric::route(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow) const {
  if (src_gpu < 0 || dst_gpu < 0 || src_gpu >= gpus_ || dst_gpu >= gpus_) {
    throw std::out_of_range("route between GPUs " + std::to_string(src_gpu) + " and " +
                            std::to_string(dst_gpu) + " of " + std::to_string(gpus_));
  }
  FabricRoute r;
  if (src_gpu == dst_gpu) {
    push(r, loopback_link());
    return r;
  }
  const std::int64_t src_node = node_of(src_gpu);
  if (src_node == node_of(dst_gpu)) {
    push(r, nvlink_up(src_gpu));
    push(r, nvlink_down(dst_gpu));
    return r;
  }
  std::int64_t first_hop = src_gpu;
  if (rail_of(src_gpu) != rail_of(dst_gpu)) {
    const std::int64_t local = dst_gpu % gpus_per_node_;
    if (local < gpus_in_node(src_node)) {  // PXN: NVLink to the GPU on the destination's rail
      first_hop = src_node * gpus_per_node_ + local;
      push(r, nvlink_up(src_gpu));
      push(r, nvlink_down(first_hop));
    }
  }
  append_network(first_hop, dst_gpu, flow, r);
  return r;
}

double RailFabric::cross_leaf_latency_s() const { return 2 * nic_lat_ + 3 * switch_lat_; }

}  // namespace clustersim::sim
