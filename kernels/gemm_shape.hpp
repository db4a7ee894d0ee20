#pragma once
// The GEMM a kernel benchmark runs: sizes and element type. CUDA-free, so calibration code can
// plan sweeps and count FLOPs and bytes without the toolkit.
//
// Layout convention (cuBLAS, column-major, "TN"): D (m x n) = alpha * op(A) * B + beta * C with
// op(A) = A^T. A is stored k x m column-major (= m x k row-major), B is stored k x n column-major
// (= n x k row-major, a weight in nn.Linear layout), C and D are m x n column-major. FP8 requires
// this layout on Hopper; the other dtypes use it too so every dtype runs the same problem.
#include <cstdint>
#include <string>

namespace clustersim::kernels {

// Element type of A and B. Accumulation and alpha/beta are fp32; C and D are bf16 for kBf16 and
// kFp8E4m3 (cuBLASLt FP8 with bf16 output), fp16 for kFp16.
enum class GemmDtype { kBf16, kFp16, kFp8E4m3 };

std::string to_string(GemmDtype dtype);

std::int64_t input_element_bytes(GemmDtype dtype);   // A and B
std::int64_t output_element_bytes(GemmDtype dtype);  // C and D

// Largest max-relative-error that verify_gemm_against_reference should accept for this dtype.
// Its inputs are exact in every dtype and their products sum exactly in fp32, so the only error is
// rounding D to the output type (half an ulp: 2^-9 bf16, 2^-11 fp16); the bounds allow 2 ulps, and
// 4 for FP8 whose Hopper tensor-core accumulator keeps fewer bits than fp32.
double gemm_verification_tolerance(GemmDtype dtype);

struct GemmShape {
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  GemmDtype dtype = GemmDtype::kBf16;

  double flops() const;  // 2 m n k
  std::int64_t a_bytes() const;
  std::int64_t b_bytes() const;
  std::int64_t d_bytes() const;  // C has the same size
};

// "4096x4096x4096 bf16" (m x n x k).
std::string to_string(const GemmShape& shape);

// Throws std::invalid_argument naming the shape when a size is not positive, or, for FP8, when
// m, n or k is not a multiple of 16 (cuBLASLt FP8 kernels need 16-byte aligned leading dimensions).
void validate_gemm_shape(const GemmShape& shape);

}  // namespace clustersim::kernels
