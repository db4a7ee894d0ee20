#include "kernels/kernel_span.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

namespace clustersim::kernels {

KernelSpan to_kernel_span(const KernelActivity& a, std::uint64_t origin_ns) {
  if (a.end_ns < a.start_ns || a.start_ns < origin_ns) {
    throw std::invalid_argument("kernel activity (correlation " + std::to_string(a.correlation_id) +
                                ") ends before it starts or starts before the origin");
  }
  if (a.grid_x < 0 || a.grid_y < 0 || a.grid_z < 0 || a.block_x < 0 || a.block_y < 0 ||
      a.block_z < 0) {
    throw std::invalid_argument("kernel activity (correlation " + std::to_string(a.correlation_id) +
                                ") has a negative grid or block dimension");
  }
  KernelSpan span;
  span.name = a.name != nullptr ? a.name : (a.is_memcpy ? "memcpy" : "unknown");
  span.start_s = static_cast<double>(a.start_ns - origin_ns) * 1e-9;
  span.duration_s = static_cast<double>(a.end_ns - a.start_ns) * 1e-9;
  span.device = a.device_id;
  span.stream = a.stream_id;
  span.is_memcpy = a.is_memcpy;
  span.bytes = a.bytes;
  if (!a.is_memcpy) {
    span.ctas = static_cast<std::int64_t>(a.grid_x) * a.grid_y * a.grid_z;
    span.threads_per_cta = static_cast<std::int64_t>(a.block_x) * a.block_y * a.block_z;
  }
  return span;
}

std::map<std::uint64_t, double> iteration_durations_s(
    const std::vector<KernelActivity>& activities,
    const std::vector<ExternalCorrelation>& correlations) {
  std::unordered_map<std::uint32_t, std::uint64_t> external_of;
  for (const auto& c : correlations) external_of[c.correlation_id] = c.external_id;
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> extent;  // id -> (start, end)
  for (const auto& a : activities) {
    if (a.end_ns < a.start_ns) {
      throw std::invalid_argument("kernel activity (correlation " +
                                  std::to_string(a.correlation_id) + ") ends before it starts");
    }
    const auto found = external_of.find(a.correlation_id);
    if (found == external_of.end()) continue;
    auto [it, inserted] = extent.try_emplace(found->second, a.start_ns, a.end_ns);
    if (!inserted) {
      it->second.first = std::min(it->second.first, a.start_ns);
      it->second.second = std::max(it->second.second, a.end_ns);
    }
  }
  std::map<std::uint64_t, double> durations;
  for (const auto& [id, range] : extent) {
    durations[id] = static_cast<double>(range.second - range.first) * 1e-9;
  }
  return durations;
}

}  // namespace clustersim::kernels
