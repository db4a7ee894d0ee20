#include "traces/straggler_trace.hpp"

namespace clustersim::traces {

const std::array<std::string_view, kStragglerOpTypeCount>& op_type_names() {
  static constexpr std::array<std::string_view, kStragglerOpTypeCount> kNames{
      "forward-compute",
      "backward-compute",
      "forward-send",
      "forward-recv",
      "backward-send",
      "backward-recv",
      "params-all-gather",
      "grads-reduce-scatter",
      "separate-grads-all-reduce",
      "layernorm-grads-all-reduce",
      "embedding-grads-all-reduce",
      "optimizer-clip-main-grad",
      "optimizer",
      "gc",
  };
  return kNames;
}

std::string_view op_type_name(StragglerOpType type) {
  return op_type_names()[static_cast<std::size_t>(type)];
}

std::optional<StragglerOpType> parse_op_type(std::string_view name) {
  const auto& names = op_type_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<StragglerOpType>(i);
  }
  return std::nullopt;
}

bool is_compute(StragglerOpType type) {
  return type == StragglerOpType::kForwardCompute || type == StragglerOpType::kBackwardCompute;
}

bool is_compute_like(StragglerOpType type) {
  return is_compute(type) || type == StragglerOpType::kGc || type == StragglerOpType::kOptimizer;
}

bool is_p2p(StragglerOpType type) {
  return type == StragglerOpType::kForwardSend || type == StragglerOpType::kForwardRecv ||
         type == StragglerOpType::kBackwardSend || type == StragglerOpType::kBackwardRecv;
}

}  // namespace clustersim::traces
