#pragma once
// The network of a GPU cluster as flat arithmetic: which links exist, their bandwidth and
// latency, and the route between any two GPUs. No SimGrid here; the SimGrid routing zone
// (simgrid_rail_zone.cpp) asks this class for routes. Model: docs/simulation-platform.md.
//
// Links are numbered in blocks (N GPUs, M = nodes * nics_per_node NICs, F = rails * leaf groups):
//   [0, N)          NVLink up   (GPU -> NVSwitch of its node)
//   [N, 2N)         NVLink down (NVSwitch -> GPU)
//   [2N, 2N+M)      NIC up      (NIC -> its rail's leaf switch)
//   [2N+M, 2N+2M)   NIC down    (leaf -> NIC)
//   next F*U        leaf up     (the uplinks of one leaf to the spine tier: U = 1 bundle with
//                               adaptive routing, U = uplinks_per_leaf links with ECMP)
//   next F*U        leaf down   (spine tier -> leaf, the same U planes)
//   next R or 0     spine tier of one rail (only when spine_oversubscription > 1)
//   last            loopback    (a GPU sending to itself; no sharing)
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "models/inputs/cluster_spec.hpp"

namespace clustersim::sim {

enum class FabricLinkKind {
  kNvlinkUp,
  kNvlinkDown,
  kNicUp,
  kNicDown,
  kLeafUp,
  kLeafDown,
  kSpine,
  kLoopback
};

struct FabricLink {
  FabricLinkKind kind = FabricLinkKind::kLoopback;
  std::int64_t index = 0;  // GPU, NIC, leaf or rail index within its kind
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;
  bool shared = true;  // false: every flow gets the full bandwidth (loopback)
};

// At most 7 links: NVLink up/down to a relay GPU on the destination's rail (PXN), NIC up,
// leaf up, spine, leaf down, NIC down.
struct FabricRoute {
  std::array<std::int32_t, 7> links{};
  std::int32_t size = 0;
  double latency_s = 0;  // sum of the links' latencies
};

class RailFabric {
 public:
  // A rail-optimized fat-tree of `gpus` GPUs (the last node and the last leaf group may be
  // partial). Throws std::invalid_argument on a spec this model cannot represent.
  // `ecmp_seed` draws the ECMP hash (cluster fabric "routing": "ecmp").
  RailFabric(const ClusterSpec& cluster, std::int64_t gpus, std::uint64_t ecmp_seed = 0);
  ~RailFabric();
  RailFabric(RailFabric&&) noexcept;
  RailFabric& operator=(RailFabric&&) noexcept;

  std::int64_t gpu_count() const { return gpus_; }
  std::int64_t gpus_per_node() const { return gpus_per_node_; }
  std::int64_t node_count() const { return nodes_; }
  std::int64_t rail_count() const { return rails_; }
  std::int64_t leaf_group_count() const { return leaf_groups_; }
  bool has_spine_links() const { return spine_links_ > 0; }
  // ECMP: a flow's uplink (spine plane) is a hash of its endpoints, connection and the seed.
  bool ecmp() const { return ecmp_; }
  std::int64_t uplinks_per_leaf() const { return uplinks_; }
  std::int64_t flows_per_peer() const { return flows_per_peer_; }
  std::int64_t link_count() const { return loopback_link() + 1; }

  std::int64_t node_of(std::int64_t gpu) const { return gpu / gpus_per_node_; }
  std::int64_t gpus_in_node(std::int64_t node) const;
  std::int64_t rail_of(std::int64_t gpu) const;  // the rail of the GPU's NIC
  std::int64_t leaf_group_of_node(std::int64_t node) const { return node / nodes_per_leaf_; }

  // Link ids by role.
  std::int32_t nvlink_up(std::int64_t gpu) const { return id(gpu); }
  std::int32_t nvlink_down(std::int64_t gpu) const { return id(gpus_ + gpu); }
  std::int32_t nic_up(std::int64_t gpu) const { return id(2 * gpus_ + nic_of(gpu)); }
  std::int32_t nic_down(std::int64_t gpu) const { return id(2 * gpus_ + nics_ + nic_of(gpu)); }
  std::int32_t leaf_up(std::int64_t rail, std::int64_t group, std::int64_t plane = 0) const {
    return id(2 * gpus_ + 2 * nics_ + (rail * leaf_groups_ + group) * uplinks_ + plane);
  }
  std::int32_t leaf_down(std::int64_t rail, std::int64_t group, std::int64_t plane = 0) const {
    return id(2 * gpus_ + 2 * nics_ + (leaves_ + rail * leaf_groups_ + group) * uplinks_ + plane);
  }
  std::int32_t spine(std::int64_t rail) const { return id(2 * gpus_ + 2 * nics_ + 2 * leaves_ * uplinks_ + rail); }
  std::int32_t loopback_link() const { return id(2 * gpus_ + 2 * nics_ + 2 * leaves_ * uplinks_ + spine_links_); }

  FabricLink link(std::int32_t link_id) const;
  // "nvlink_up.g12", "nic_down.n3.r5", "leaf_up.r0.l2" (ECMP: "leaf_up.r0.l2.u7"), "spine.r1",
  // "loopback".
  std::string link_name(std::int32_t link_id) const;
  // The id of a link named as above; -1 if there is none.
  std::int32_t find_link(std::string_view name) const;

  // Same GPU: loopback. Same node: NVLink up + down. Otherwise the network: if the source's
  // rail differs from the destination's, first NVLink to the source-node GPU on the
  // destination's rail (PXN; if that GPU does not exist, the flow crosses rails at the spine
  // tier), then NIC up, leaf up + [spine] + leaf down unless both NICs share a leaf, NIC down.
  // With ECMP, connection `flow` (0 .. flows_per_peer - 1) of the pair takes the spine plane
  // hashed from (seed, the NIC-side source GPU, dst, flow); SimGrid flows use connection 0.
  FabricRoute route(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow = 0) const;

  // Latency of a same-rail route between leaves (2 NICs + 3 switches); the flat-star oracle
  // gives each of its two links half of it.
  double cross_leaf_latency_s() const;
  double nic_bandwidth_bytes_per_s() const { return nic_bw_; }
  double hbm_bandwidth_bytes_per_s() const { return hbm_bw_; }

 private:
  static std::int32_t id(std::int64_t v) { return static_cast<std::int32_t>(v); }
  std::int64_t nic_of(std::int64_t gpu) const { return node_of(gpu) * rails_ + rail_of(gpu); }
  void append_network(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow, FabricRoute& r) const;
  std::int64_t plane_of(std::int64_t src_gpu, std::int64_t dst_gpu, std::int64_t flow) const;
  void push(FabricRoute& r, std::int32_t link_id) const;

  std::int64_t gpus_ = 0, gpus_per_node_ = 0, nodes_ = 0, rails_ = 0, nics_ = 0;
  std::int64_t nodes_per_leaf_ = 0, leaf_groups_ = 0, leaves_ = 0, spine_links_ = 0;
  std::int64_t uplinks_ = 1, flows_per_peer_ = 1;
  bool ecmp_ = false;
  std::uint64_t ecmp_seed_ = 0;
  double nvlink_bw_ = 0, nvlink_lat_ = 0, nic_bw_ = 0, nic_lat_ = 0, switch_lat_ = 0;
  double leaf_bw_ = 0, spine_bw_ = 0, hbm_bw_ = 0;
  mutable std::unique_ptr<std::unordered_map<std::string, std::int32_t>> names_;  // built on first find_link
};

}  // namespace clustersim::sim
