#include "sim/serving/serve_network.hpp"

#include <algorithm>

namespace clustersim::sim {

TransferId ServeFlows::start(const InstancePlace& src, const InstancePlace& dst, double bytes, double closed_form_s,
                             double at_s) {
  const std::int64_t n = std::max(src.gpus, dst.gpus), shards = std::min(src.gpus, dst.gpus);
  const double per_rank = bytes / static_cast<double>(shards);
  flows_.clear();
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t s = src.first_gpu + k * src.gpus / n, d = dst.first_gpu + k * dst.gpus / n;
    // Alone, this flow's narrowest link carries per_rank * scale (its share of the rank's load):
    // latency + per_rank * scale / bandwidth = closed_form_s.
    const double latency = uncontended_flow_s(net_.fabric(), s, d, 0.0);
    const double per_byte = per_rank > 0 ? (uncontended_flow_s(net_.fabric(), s, d, per_rank) - latency) / per_rank : 0;
    const double scale = per_byte > 0 ? std::max(0.0, closed_form_s - latency) / (per_rank * per_byte) : 0;
    flows_.push_back({s, d, bytes / static_cast<double>(n) * scale});
  }
  return net_.start(flows_, at_s);
}

}  // namespace clustersim::sim
