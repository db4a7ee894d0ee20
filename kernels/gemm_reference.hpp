#pragma once
// CPU reference GEMM used to check the numerics of GPU GEMMs on small shapes.
#include <cstdint>
#include <span>
#include <vector>

namespace clustersim::kernels {

// D = alpha * A * B + beta * C, all row-major: A is m x k, B is k x n, C and D are m x n.
// Each element accumulates its k products in float, in order of k. An empty C means zeros.
// Throws std::invalid_argument when a size is negative or a span has the wrong length.
std::vector<float> gemm_reference(std::int64_t m, std::int64_t n, std::int64_t k,
                                  std::span<const float> a, std::span<const float> b, float alpha,
                                  std::span<const float> c, float beta);

}  // namespace clustersim::kernels
