#pragma once
// A GPU cluster: the GPU, the node (NVLink domain and NICs) and the fabric between nodes.
// Format: docs/cluster-format.md.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "models/inputs/fleet_spec.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/nccl_graph_spec.hpp"

namespace clustersim {

enum class Dtype { kFp64, kFp32, kTf32, kBf16, kFp16, kFp8 };
std::string to_string(Dtype dtype);
// "fp64", "fp32", "tf32", "bf16", "fp16", "fp8"; nullopt otherwise.
std::optional<Dtype> dtype_from_string(std::string_view name);
double bytes_per_element(Dtype dtype);

struct GpuSpec {
  std::string name;
  std::int64_t sm_count = 0;
  std::int64_t hbm_bytes = 0;
  double hbm_bandwidth_bytes_per_s = 0;
  std::map<Dtype, double> peak_dense_flops_per_s;  // dtypes the GPU lacks are absent

  std::optional<double> peak_flops_per_s(Dtype dtype) const;
};

struct NodeSpec {
  std::int64_t gpus_per_node = 0;
  double nvlink_bandwidth_bytes_per_s = 0;  // per GPU, per direction
  double nvlink_latency_s = 0;
  std::int64_t nics_per_node = 0;
  double nic_bandwidth_bytes_per_s = 0;  // per NIC, per direction
  double nic_latency_s = 0;
};

struct FabricSpec {
  std::string topology;  // "rail_optimized_fat_tree"
  std::int64_t nodes_per_leaf = 0;
  double leaf_oversubscription = 1.0;
  double spine_oversubscription = 1.0;
  double switch_latency_s = 0;
  // How a flow leaving a leaf picks its uplink: "adaptive" (the switches spread packets, so a
  // leaf's uplinks act as one bundle) or "ecmp" (each flow hashes onto one of
  // `uplinks_per_leaf` uplinks; NCCL opens `flows_per_peer` connections per peer, each hashed).
  std::string routing = "adaptive";
  std::int64_t uplinks_per_leaf = 0;  // ecmp only
  std::int64_t flows_per_peer = 0;    // ecmp only
};

struct ClusterSpec {
  std::string name;
  std::string source;
  std::string description;
  GpuSpec gpu;
  NodeSpec node;
  FabricSpec fabric;
  std::map<std::string, std::string> sources;  // JSON pointer -> where the number comes from
  std::optional<NcclGraphSpec> nccl;  // the "nccl" key: what NCCL's tuner sees; absent: no NCCL model
  FleetSpec fleet;  // the "fleet" key: a fleet preset, file or "none" (default); --fleet overrides
};

ClusterSpec load_cluster_spec(const std::string& source, const std::string& display_name,
                              Diagnostics& diag);

}  // namespace clustersim
