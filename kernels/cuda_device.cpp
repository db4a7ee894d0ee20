#include "kernels/cuda_device.hpp"

#include <cuda_runtime_api.h>

namespace clustersim::kernels {

namespace {

struct DeviceCountResult {
  cudaError_t status = cudaSuccess;
  int count = 0;
};

DeviceCountResult query_device_count() {
  DeviceCountResult result;
  result.status = cudaGetDeviceCount(&result.count);
  if (result.status != cudaSuccess) {
    (void)cudaGetLastError();  // do not leave the failure for the next runtime call to report
    result.count = 0;
  }
  return result;
}

}  // namespace

int cuda_device_count() { return query_device_count().count; }

std::string cuda_device_status() {
  const DeviceCountResult result = query_device_count();
  if (result.status != cudaSuccess) {
    return std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(result.status) + " (" +
           cudaGetErrorString(result.status) + ")";
  }
  return std::to_string(result.count) + (result.count == 1 ? " CUDA device" : " CUDA devices");
}

}  // namespace clustersim::kernels
