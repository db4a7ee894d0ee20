#include "models/cost/measurement_record.hpp"

namespace clustersim {

namespace {

struct CollectiveName {
  CollectiveKind kind;
  std::string_view name;
};
constexpr CollectiveName kCollectives[] = {
    {CollectiveKind::kAllReduce, "all_reduce"},   {CollectiveKind::kAllGather, "all_gather"},
    {CollectiveKind::kReduceScatter, "reduce_scatter"}, {CollectiveKind::kAllToAll, "all_to_all"},
    {CollectiveKind::kBroadcast, "broadcast"},    {CollectiveKind::kReduce, "reduce"},
    {CollectiveKind::kSendRecv, "send_recv"}};

}  // namespace

std::string_view to_string(CollectiveKind kind) {
  for (const auto& c : kCollectives) {
    if (c.kind == kind) return c.name;
  }
  return "?";
}

std::optional<CollectiveKind> collective_kind_from_string(std::string_view name) {
  for (const auto& c : kCollectives) {
    if (c.name == name) return c.kind;
  }
  return std::nullopt;
}

double algorithm_bandwidth_bytes_per_s(double size_bytes, double time_s) {
  return size_bytes / time_s;
}

double bus_bandwidth_factor(CollectiveKind kind, int ranks) {
  const double n = ranks;
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return 2.0 * (n - 1) / n;
    case CollectiveKind::kAllGather:
    case CollectiveKind::kReduceScatter:
    case CollectiveKind::kAllToAll:
      return (n - 1) / n;
    case CollectiveKind::kBroadcast:
    case CollectiveKind::kReduce:
    case CollectiveKind::kSendRecv:
      return 1.0;
  }
  return 1.0;
}

double time_from_bus_bandwidth_s(CollectiveKind kind, int ranks, double size_bytes,
                                 double bus_bandwidth_bytes_per_s) {
  double algbw = bus_bandwidth_bytes_per_s / bus_bandwidth_factor(kind, ranks);
  return size_bytes / algbw;
}

std::string_view to_string(LinkScope scope) {
  return scope == LinkScope::kNvlink ? "nvlink" : "network";
}

std::string_view to_string(AttentionPass pass) {
  switch (pass) {
    case AttentionPass::kForward:
      return "forward";
    case AttentionPass::kBackward:
      return "backward";
    case AttentionPass::kForwardBackward:
      return "forward_backward";
    case AttentionPass::kDecode:
      return "decode";
  }
  return "?";
}

std::string_view to_string(MoePhase phase) {
  return phase == MoePhase::kDispatch ? "dispatch" : "combine";
}

std::string_view to_string(ServePhase phase) {
  return phase == ServePhase::kPrefill ? "prefill" : "decode";
}

std::string_view to_string(OverlapPattern pattern) {
  return pattern == OverlapPattern::kAllGatherGemm ? "ag_gemm" : "gemm_rs";
}

bool grouped_gemm_implementation(std::string_view implementation) {
  return implementation.starts_with("grouped:");
}

}  // namespace clustersim
