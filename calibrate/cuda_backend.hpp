#pragma once
// The CUDA backend (built only with the toolkit): the suites on this node's GPUs through
// kernels/ (cuBLASLt GEMM, NCCL collectives, TP overlap, MoE layer, attention probe). Throws
// BackendUnavailable when no CUDA device is usable. Uses only kernels/' CUDA-free headers.
#include <memory>

#include "calibrate/backend.hpp"

namespace clustersim::calibrate {

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

}  // namespace clustersim::calibrate
