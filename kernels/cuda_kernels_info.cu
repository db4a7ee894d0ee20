#include "kernels/cuda_kernels_info.hpp"

namespace clustersim::kernels {

std::vector<std::string> compiled_cuda_operations() {
  return {"gemm", "nccl_collective", "cupti_timer", "tp_overlap", "moe_layer", "attention", "memory_copy"};
}

std::string compiled_cuda_architectures() { return CLUSTERSIM_CUDA_ARCHITECTURES; }

}  // namespace clustersim::kernels
