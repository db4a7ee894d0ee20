#pragma once
// CUDA_CHECK(call) and CUBLAS_CHECK(call), in the spirit of nccl-tests' CUDACHECK: a failing call
// throws std::runtime_error naming, on one line, the host, file:line, the call as written and the
// library's error name and string, e.g. "gpu-07: /src/kernels/cublaslt_gemm.cu:212:
// cudaMalloc(&ptr, bytes) failed: cudaErrorMemoryAllocation (out of memory)".
// Only for code inside kernels/ (it includes CUDA headers).
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace clustersim::kernels::detail {

inline std::string cuda_error_context(const char* call, const char* file, int line) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) {
    host[0] = '\0';
  }
  return std::string(host[0] != '\0' ? host : "unknown-host") + ": " + file + ":" +
         std::to_string(line) + ": " + call + " failed: ";
}

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so later calls do not report it again
  throw std::runtime_error(cuda_error_context(call, file, line) + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
  throw std::runtime_error(cuda_error_context(call, file, line) + cublasLtGetStatusName(status) +
                           " (" + cublasLtGetStatusString(status) + ")");
}

}  // namespace clustersim::kernels::detail

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    const cudaError_t clustersim_cuda_status_ = (call);                                  \
    if (clustersim_cuda_status_ != cudaSuccess) {                                        \
      ::clustersim::kernels::detail::throw_cuda_error(clustersim_cuda_status_, #call,    \
                                                      __FILE__, __LINE__);               \
    }                                                                                    \
  } while (0)

#define CUBLAS_CHECK(call)                                                               \
  do {                                                                                   \
    const cublasStatus_t clustersim_cublas_status_ = (call);                             \
    if (clustersim_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                            \
      ::clustersim::kernels::detail::throw_cublas_error(clustersim_cublas_status_, #call, \
                                                        __FILE__, __LINE__);             \
    }                                                                                    \
  } while (0)
