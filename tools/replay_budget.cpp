#include "tools/replay_budget.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "tools/cli_common.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

ReplayBudget replay_budget(const ParallelLayout& layout, std::int64_t replicas) {
  // Per replica: every (pipeline rank, model chunk, micro-batch) has a forward and a backward
  // activity and sends each to its neighbour stage; the step adds a few per rank.
  const std::int64_t per_replica = 4 * layout.pp * layout.virtual_stages * layout.num_microbatches + 8 * layout.pp;
  ReplayBudget b;
  b.activities = per_replica * std::max<std::int64_t>(replicas, 1);
  b.bytes = kReplayBaseBytes + kReplayBytesPerGpu * static_cast<double>(layout.world) +
            kReplayBytesPerActivity * static_cast<double>(b.activities);
  return b;
}

std::optional<double> available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  double value = 0;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return std::nullopt;
}

void check_replay_fits_machine(const ParallelLayout& layout, std::int64_t replicas) {
  const std::optional<double> available = available_memory_bytes();
  if (!available) return;
  const ReplayBudget need = replay_budget(layout, replicas);
  if (need.bytes <= *available) return;
  // The same plan shape (TP, PP, CP, micro-batches) at fewer data-parallel replicas.
  const double other = need.bytes - kReplayBytesPerGpu * static_cast<double>(layout.world);
  const double fits = std::max(0.0, (*available - other) / kReplayBytesPerGpu);
  const std::int64_t model_parallel = layout.tp * layout.pp * layout.cp;
  const std::int64_t gpus = static_cast<std::int64_t>(fits) / model_parallel * model_parallel;
  throw UsageError(fmt::format(
      "simulate --gpus {}: the replay would need about {} ({} simulated GPUs at ~{:.1f} KB each, ~{} "
      "activities), more than the {} this machine has available; with this plan up to about {} GPUs fit "
      "here (estimate has no such limit)",
      layout.world, human_bytes(need.bytes), layout.world, kReplayBytesPerGpu / 1e3, need.activities,
      human_bytes(*available), gpus));
}

}  // namespace clustersim::cli
