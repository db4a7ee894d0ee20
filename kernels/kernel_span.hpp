#pragma once
// GPU activity as the harness times it. CUPTI's activity records (CUpti_ActivityKernel10,
// CUpti_ActivityMemcpy6, CUpti_ActivityExternalCorrelation) are copied into these plain structs
// by cupti_collector.cpp, the only file that sees CUPTI headers; everything from there on is
// pure C++ and unit-tested with hand-built structs. CUDA-free.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clustersim::kernels {

// One kernel or memcpy the GPU executed. Timestamps in ns (CUPTI's clock, common to devices).
struct KernelActivity {
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  std::uint32_t device_id = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t correlation_id = 0;  // joins the launch (runtime API record) and the external id
  std::int32_t grid_x = 0, grid_y = 0, grid_z = 0;  // 0 for memcpy
  std::int32_t block_x = 0, block_y = 0, block_z = 0;
  std::int32_t registers_per_thread = 0;
  std::int32_t shared_memory_bytes = 0;  // static + dynamic
  bool is_memcpy = false;
  std::uint64_t bytes = 0;  // memcpy only
  const char* name = nullptr;  // kernel name as CUPTI gives it (may be null); copied on mapping
};

// CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: the harness pushes the iteration index as external
// id around each iteration's launches; this joins it to the launches' correlation ids.
struct ExternalCorrelation {
  std::uint32_t correlation_id = 0;
  std::uint64_t external_id = 0;
};

// Our span: a kernel's place in time relative to `origin_ns` and its launch geometry.
struct KernelSpan {
  std::string name;
  double start_s = 0;
  double duration_s = 0;
  std::uint32_t device = 0;
  std::uint32_t stream = 0;
  std::int64_t ctas = 0;  // grid_x grid_y grid_z (0 for memcpy)
  std::int64_t threads_per_cta = 0;
  bool is_memcpy = false;
  std::uint64_t bytes = 0;
};

// Throws std::invalid_argument when end < start, start < origin, or a grid or block dimension
// is negative. A null name becomes "memcpy" or "unknown".
KernelSpan to_kernel_span(const KernelActivity& activity, std::uint64_t origin_ns);

// Per external id (iteration): last end minus first start over every activity whose launch
// carries that id. Activities with no external id are ignored. Ordered by external id.
// Throws std::invalid_argument for an activity with end < start.
std::map<std::uint64_t, double> iteration_durations_s(
    const std::vector<KernelActivity>& activities,
    const std::vector<ExternalCorrelation>& correlations);

}  // namespace clustersim::kernels
