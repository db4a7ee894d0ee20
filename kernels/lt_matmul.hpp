#pragma once
// A configured cuBLASLt GEMM (the layout of gemm_shape.hpp, heuristic algorithm, own handle and
// workspace) for the operations that run GEMMs on their own buffers and streams: overlap and
// MoE. kernels/ only (CUDA types). Implemented in cublaslt_gemm.cu.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "kernels/cublaslt_gemm.hpp"
#include "kernels/gemm_shape.hpp"

namespace clustersim::kernels {

class LtMatmul {
 public:
  // ld_d: leading dimension of D (0: shape.m), to write an m-row slice of a taller D.
  explicit LtMatmul(const GemmShape& shape, std::int64_t ld_d = 0,
                    std::int64_t workspace_limit_bytes = 32LL << 20);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // D = A^T B (alpha 1, beta 0) on `stream`, on the current device.
  void run(const void* a, const void* b, void* d, cudaStream_t stream) const;
  // The chosen algorithm's tile, stages, split-K into `timing`.
  void describe(GemmTiming& timing) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clustersim::kernels
