#pragma once
// Whether a `simulate` replay fits on this machine, decided from the plan before anything is
// built: the simulated platform costs about kReplayBytesPerGpu per GPU (hosts, links, routes),
// the replayed iteration about kReplayBytesPerActivity per activity. A replay that would not fit
// in the memory available is refused up front (exit 2) with the largest world size that would,
// instead of running for minutes and dying with std::bad_alloc.
#include <cstdint>
#include <optional>

#include "models/inputs/parallel_layout.hpp"

namespace clustersim::cli {

// Measured with Llama-3.1-405B TP8 PP16 on h100-ndr (Release, max RSS of the replay): without a
// fleet 74 MB at 16,384 GPUs, 267 MB at 65,536, 1,050 MB at 262,144 (3.98 KB per GPU between the
// last two); with the preset's fleet (slow hosts add replica classes: 44 at 65,536 GPUs, 137 at
// 262,144) 318 MB and 1,146 MB, 4.2 KB per GPU. --full at 16,384 GPUs adds 55 MB for 130k
// activities and 61k flows. The per-GPU figure covers the fleet's extra replica classes.
inline constexpr double kReplayBaseBytes = 64e6;
inline constexpr double kReplayBytesPerGpu = 4.3e3;
inline constexpr double kReplayBytesPerActivity = 450;

struct ReplayBudget {
  std::int64_t activities = 0;  // estimated activities of the replayed iteration
  double bytes = 0;             // estimated peak memory of the replay
};

// `replicas`: data-parallel replicas simulated (1 symmetric, DP with --full, more with a scenario).
ReplayBudget replay_budget(const ParallelLayout& layout, std::int64_t replicas);

// MemAvailable of /proc/meminfo, if readable.
std::optional<double> available_memory_bytes();

// Throws UsageError when the replay's estimate exceeds the available memory, naming both and
// the largest --gpus that fits with the same plan shape.
void check_replay_fits_machine(const ParallelLayout& layout, std::int64_t replicas);

}  // namespace clustersim::cli
