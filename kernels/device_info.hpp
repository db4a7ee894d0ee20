#pragma once
// Provenance of a GPU run: device, driver and library versions, and clocks from NVML when the
// driver's libnvidia-ml can be loaded (dlopen; absent otherwise). CUDA-free header.
#include <cstdint>
#include <optional>
#include <string>

namespace clustersim::kernels {

struct DeviceInfo {
  std::string name;
  int compute_capability = 0;  // 90 for sm_90
  std::int64_t sm_count = 0;
  std::int64_t l2_bytes = 0;
  std::string driver;   // "13.0" from cudaDriverGetVersion; NVML's "580.65.06" when present
  std::string cuda;     // runtime, "13.0"
  std::string cublas;   // cublasLtGetVersion, "13.0.0"
  std::string nccl;     // ncclGetVersion, "2.28.3"
  std::optional<double> sm_clock_mhz, memory_clock_mhz, power_w;  // NVML, now
};

// Throws std::runtime_error when the device cannot be queried.
DeviceInfo device_info(int device);

}  // namespace clustersim::kernels
