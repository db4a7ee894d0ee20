#include "kernels/device_info.hpp"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include "kernels/cuda_check.hpp"
#include "kernels/nccl_collective.hpp"

namespace clustersim::kernels {

namespace {

std::string cuda_version_text(int version) {  // 13000 -> "13.0"
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// The few NVML entry points used, declared here so that no NVML header is needed: their C
// signatures are stable since NVML 1 (the _v2 names since CUDA 6.5).
using NvmlDevice = void*;
constexpr int kNvmlSuccess = 0;
constexpr int kNvmlClockSm = 1;   // NVML_CLOCK_SM
constexpr int kNvmlClockMem = 2;  // NVML_CLOCK_MEM

void read_nvml(int device, DeviceInfo& info) {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return;  // no NVML: clocks stay absent
  using Init = int (*)();
  using Shutdown = int (*)();
  using ByPci = int (*)(const char*, NvmlDevice*);
  using Clock = int (*)(NvmlDevice, int, unsigned*);
  using Power = int (*)(NvmlDevice, unsigned*);
  using Driver = int (*)(char*, unsigned);
  const auto init = reinterpret_cast<Init>(dlsym(lib, "nvmlInit_v2"));
  const auto shutdown = reinterpret_cast<Shutdown>(dlsym(lib, "nvmlShutdown"));
  const auto by_pci = reinterpret_cast<ByPci>(dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
  const auto clock = reinterpret_cast<Clock>(dlsym(lib, "nvmlDeviceGetClockInfo"));
  const auto power = reinterpret_cast<Power>(dlsym(lib, "nvmlDeviceGetPowerUsage"));
  const auto driver = reinterpret_cast<Driver>(dlsym(lib, "nvmlSystemGetDriverVersion"));
  if (init != nullptr && shutdown != nullptr && init() == kNvmlSuccess) {
    // CUDA and NVML number devices differently; the PCI bus id joins them.
    char pci[32] = {};
    NvmlDevice handle = nullptr;
    if (cudaDeviceGetPCIBusId(pci, sizeof(pci), device) == cudaSuccess && by_pci != nullptr &&
        by_pci(pci, &handle) == kNvmlSuccess) {
      unsigned value = 0;
      if (clock != nullptr && clock(handle, kNvmlClockSm, &value) == kNvmlSuccess) info.sm_clock_mhz = value;
      if (clock != nullptr && clock(handle, kNvmlClockMem, &value) == kNvmlSuccess) info.memory_clock_mhz = value;
      if (power != nullptr && power(handle, &value) == kNvmlSuccess) info.power_w = value / 1000.0;
    }
    char version[96] = {};
    if (driver != nullptr && driver(version, sizeof(version)) == kNvmlSuccess) info.driver = version;
    (void)shutdown();
  }
  (void)cudaGetLastError();
  dlclose(lib);
}

}  // namespace

DeviceInfo device_info(int device) {
  DeviceInfo info;
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  info.name = p.name;
  info.compute_capability = p.major * 10 + p.minor;
  info.sm_count = p.multiProcessorCount;
  info.l2_bytes = p.l2CacheSize;
  int version = 0;
  CUDA_CHECK(cudaDriverGetVersion(&version));
  info.driver = "CUDA driver API " + cuda_version_text(version);
  CUDA_CHECK(cudaRuntimeGetVersion(&version));
  info.cuda = cuda_version_text(version);
  const std::size_t lt = cublasLtGetVersion();  // major*10000 + minor*100 + patch
  info.cublas = std::to_string(lt / 10000) + "." + std::to_string(lt / 100 % 100) + "." +
                std::to_string(lt % 100);
  info.nccl = nccl_version_string();
  read_nvml(device, info);
  return info;
}

}  // namespace clustersim::kernels
