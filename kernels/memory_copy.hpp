#pragma once
// A STREAM-style copy on one GPU as a KernelRun: a grid-stride kernel copying `bytes / 2` from
// one buffer to another (bytes read plus written, the convention of memory records), checked
// element for element at a small size before timing. CUDA-free header; memory_copy.cu.
#include <cstdint>

#include "kernels/kernel_run.hpp"

namespace clustersim::kernels {

struct MemoryCopyConfig {
  std::int64_t bytes = 0;  // read plus written; a positive multiple of 32
};

// Throws std::invalid_argument for a size that is not a positive multiple of 32 and
// std::runtime_error when the small copy does not reproduce its input.
KernelRun run_memory_copy(const MemoryCopyConfig& config, const TimingOptions& options);

}  // namespace clustersim::kernels
