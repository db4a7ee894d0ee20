#pragma once
// What the CUDA part of kernels/ was built with; a test asserts it whenever nvcc was found.
// CUDA-free header.
#include <string>
#include <vector>

namespace clustersim::kernels {

// One entry per CUDA operation file compiled in: "gemm", "nccl_collective", "cupti_timer".
// (tp_overlap, moe_layer, flash_attention and paged_decode are not written yet: issue 6.)
std::vector<std::string> compiled_cuda_operations();
// CMake's CUDA_ARCHITECTURES of clustersim_kernels, comma-separated: "80,90,90a".
std::string compiled_cuda_architectures();

}  // namespace clustersim::kernels
