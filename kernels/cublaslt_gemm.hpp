#pragma once
// Timing and numerical check of one cuBLASLt GEMM on one GPU (layout: see gemm_shape.hpp).
// CUDA-free header; the implementation is cublaslt_gemm.cu. Phases, CUTLASS-profiler style:
// configure (descriptors, heuristic algorithm) -> workspace and buffers -> warm up -> profile.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gemm_shape.hpp"

namespace clustersim::kernels {

struct GemmTimingOptions {
  int warmup_iterations = 10;
  int iterations = 100;  // timed, one CUDA event pair each
  // Rotate through enough copies of A and B that more than 2x the L2 cache is read between two
  // uses of the same copy, so no iteration finds its operands in L2 (CUTLASS profiler guideline).
  // Only as many copies as there are iterations are allocated, and fewer if device memory is short.
  bool rotate_buffers = true;
  std::int64_t workspace_bytes = 32LL << 20;  // limit offered to the heuristic
  int device = 0;
};

struct GemmTiming {
  GemmShape shape;
  std::vector<double> samples_s;  // every timed iteration, in launch order
  double median_s = 0;
  double achieved_flops_per_s = 0;  // 2 m n k / median_s

  // The algorithm cublasLtMatmulAlgoGetHeuristic chose (top result), from
  // cublasLtMatmulAlgoConfigGetAttribute; -1 means not queried.
  std::int64_t algo_id = -1;
  std::int64_t tile_id = -1;    // cublasLtMatmulTile_t
  std::int64_t stages_id = -1;  // cublasLtMatmulStages_t
  std::int64_t split_k_count = -1;
  std::int64_t cluster_shape_id = -1;  // cublasLtClusterShape_t (Hopper thread-block clusters)
  double heuristic_waves = 0;          // heuristic's wavesCount: 1.0 fills the GPU once
  std::int64_t workspace_bytes = 0;    // what the chosen algorithm needs
  std::int64_t workspace_limit_bytes = 0;

  // Provenance: the algorithm depends on the GPU, the cuBLASLt version and the workspace limit.
  std::string device_name;
  int compute_capability = 0;  // 90 for sm_90
  std::int64_t l2_cache_bytes = 0;
  std::int64_t buffer_copies = 1;  // copies of A and B rotated through
  std::int64_t cublaslt_version = 0;
};

// Times shape.dtype GEMMs with fp32 accumulation, alpha 1 and beta 0. Throws std::invalid_argument
// for a bad shape or options, std::runtime_error when CUDA or cuBLASLt fails or no algorithm
// supports the shape on this GPU (e.g. FP8 before sm_89).
GemmTiming time_gemm(const GemmShape& shape, const GemmTimingOptions& options = {});

// Runs one cuBLASLt matmul (alpha 1, beta 0.5, C != D) on deterministic pseudo-random inputs that
// are exact in the dtype (multiples of 0.5 in [-2, 2]), copies D back and compares it with
// gemm_reference. Returns the largest |D - D_ref| / max(|D_ref|, 1); compare it with
// gemm_verification_tolerance(shape.dtype). For small shapes: throws std::invalid_argument when
// m n k exceeds 2^28.
double verify_gemm_against_reference(const GemmShape& shape, int device = 0);

// Whether device can run dtype here: compute capability 8.0+ (this library is built for sm_80 and
// sm_90), and 8.9+ for FP8. Throws std::runtime_error when the device cannot be queried.
bool gemm_dtype_supported(GemmDtype dtype, int device = 0);

}  // namespace clustersim::kernels
