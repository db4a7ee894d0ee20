// Memory sweep: a STREAM-style copy from below the last-level cache to well beyond it, the
// bandwidth that prices memory-bound operations (norms, activations, casts, the optimizer).
#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

std::vector<SweepCase> memory_sweep(const SweepOptions& o) {
  // Bytes read plus written, doubling: GPU 2 MiB to 2 GiB (L2 is 40-50 MiB on A100/H100); CPU
  // 256 KiB to 256 MiB per rank thread, a few seconds in all. Enough sizes per cache regime for
  // the piecewise fit (profile_builder.cpp).
  const bool cpu = o.scale == SweepScale::kCpu;
  const std::int64_t first = std::int64_t{1} << (cpu ? 18 : 21);
  const std::int64_t last = std::int64_t{1} << (cpu ? 28 : 31);
  std::vector<SweepCase> cases;
  for (std::int64_t bytes = first; bytes <= last; bytes *= 2) {
    cases.push_back({Suite::kMemory, fmt::format("memory copy {} B", bytes), MemoryCase{"copy", bytes}});
  }
  return cases;
}

}  // namespace clustersim::calibrate
