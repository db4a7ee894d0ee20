#pragma once
// Whether this process can use a CUDA GPU. CUDA-free header; GPU tests skip on a 0 count.
#include <string>

namespace clustersim::kernels {

// Number of CUDA devices visible to this process. Returns 0, never throws, when
// cudaGetDeviceCount fails: no driver (cudaErrorInsufficientDriver), only the stub libcuda
// (cudaErrorStubLibrary), no device (cudaErrorNoDevice), driver/runtime mismatch, and so on.
int cuda_device_count();

// One line saying why cuda_device_count() returns what it does, for skip messages and logs:
// "2 CUDA devices", or "cudaGetDeviceCount failed: cudaErrorNoDevice (no CUDA-capable device is
// detected)".
std::string cuda_device_status();

}  // namespace clustersim::kernels
