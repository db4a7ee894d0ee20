#pragma once
// cuBLASLt GEMM as a KernelRun: verified against gemm_reference at a small shape of the same
// dtype, then timed by time_gemm (buffer rotation instead of an L2 flush; CUDA events), with
// the chosen algorithm's tile, stages and split-K as attributes. CUDA-free header.
#include "kernels/gemm_shape.hpp"
#include "kernels/kernel_run.hpp"

namespace clustersim::kernels {

KernelRun run_gemm(const GemmShape& shape, const TimingOptions& options);

}  // namespace clustersim::kernels
