#include "kernels/gemm_shape.hpp"

#include <stdexcept>

namespace clustersim::kernels {

std::string to_string(GemmDtype dtype) {
  switch (dtype) {
    case GemmDtype::kBf16:
      return "bf16";
    case GemmDtype::kFp16:
      return "fp16";
    case GemmDtype::kFp8E4m3:
      return "fp8_e4m3";
  }
  return "unknown";
}

std::int64_t input_element_bytes(GemmDtype dtype) {
  return dtype == GemmDtype::kFp8E4m3 ? 1 : 2;
}

std::int64_t output_element_bytes(GemmDtype /*dtype*/) {
  return 2;  // bf16 or fp16
}

double gemm_verification_tolerance(GemmDtype dtype) {
  switch (dtype) {
    case GemmDtype::kBf16:
      return 1.0 / 128;  // 2 ulps of bf16 (8 significant bits)
    case GemmDtype::kFp16:
      return 1.0 / 512;  // 2 ulps of fp16 (11 significant bits)
    case GemmDtype::kFp8E4m3:
      return 1.0 / 64;  // bf16 output, reduced-precision FP8 accumulator
  }
  return 0;
}

double GemmShape::flops() const {
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
}

std::int64_t GemmShape::a_bytes() const { return m * k * input_element_bytes(dtype); }
std::int64_t GemmShape::b_bytes() const { return k * n * input_element_bytes(dtype); }
std::int64_t GemmShape::d_bytes() const { return m * n * output_element_bytes(dtype); }

std::string to_string(const GemmShape& shape) {
  return std::to_string(shape.m) + "x" + std::to_string(shape.n) + "x" + std::to_string(shape.k) +
         " " + to_string(shape.dtype);
}

void validate_gemm_shape(const GemmShape& shape) {
  if (shape.m <= 0 || shape.n <= 0 || shape.k <= 0) {
    throw std::invalid_argument("GEMM " + to_string(shape) + ": m, n and k must be positive");
  }
  if (shape.dtype == GemmDtype::kFp8E4m3 &&
      (shape.m % 16 != 0 || shape.n % 16 != 0 || shape.k % 16 != 0)) {
    throw std::invalid_argument("GEMM " + to_string(shape) +
                                ": FP8 needs m, n and k to be multiples of 16");
  }
}

}  // namespace clustersim::kernels
