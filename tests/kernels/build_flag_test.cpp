// The CUDA kernels are compiled whenever CMake found nvcc (outside sanitizer builds, which turn
// CUDA off): CI has the toolkit but no GPU, so this is what keeps the CUDA sources compiling.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA
#include "kernels/cuda_kernels_info.hpp"
#endif

namespace clustersim::kernels {
namespace {

TEST(CudaBuild, KernelsAreBuiltWhenNvccWasFound) {
#if CLUSTERSIM_EXPECT_CUDA_KERNELS
#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA
  const auto ops = compiled_cuda_operations();
  for (const char* op :
       {"gemm", "nccl_collective", "cupti_timer", "tp_overlap", "moe_layer", "attention", "memory_copy"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  }
  const std::string archs = compiled_cuda_architectures();
  for (const char* arch : {"80", "90", "90a"}) {
    EXPECT_NE(archs.find(arch), std::string::npos) << archs;
  }
#else
  FAIL() << "nvcc was found at configure time but kernels/ CUDA sources were not built";
#endif
#else
  GTEST_SKIP() << "no nvcc at configure time (or a sanitizer build): CUDA kernels not expected";
#endif
}

}  // namespace
}  // namespace clustersim::kernels
