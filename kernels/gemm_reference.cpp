#include "kernels/gemm_reference.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace clustersim::kernels {

namespace {

void check_size(const char* name, std::size_t actual, std::int64_t rows, std::int64_t cols) {
  if (actual != static_cast<std::size_t>(rows * cols)) {
    throw std::invalid_argument("gemm_reference: " + std::string(name) + " has " +
                                std::to_string(actual) + " elements, expected " +
                                std::to_string(rows) + " x " + std::to_string(cols));
  }
}

}  // namespace

std::vector<float> gemm_reference(std::int64_t m, std::int64_t n, std::int64_t k,
                                  std::span<const float> a, std::span<const float> b, float alpha,
                                  std::span<const float> c, float beta) {
  if (m < 0 || n < 0 || k < 0) {
    throw std::invalid_argument("gemm_reference: negative size " + std::to_string(m) + "x" +
                                std::to_string(n) + "x" + std::to_string(k));
  }
  check_size("A", a.size(), m, k);
  check_size("B", b.size(), k, n);
  if (!c.empty()) {
    check_size("C", c.size(), m, n);
  }

  const auto un = static_cast<std::size_t>(n);
  const auto uk = static_cast<std::size_t>(k);
  std::vector<float> d(static_cast<std::size_t>(m) * un);
  std::vector<float> acc(un);
  for (std::size_t i = 0; i < static_cast<std::size_t>(m); ++i) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    // i-p-j order: each acc[j] still sums its products in order of p, and B is read by rows.
    for (std::size_t p = 0; p < uk; ++p) {
      const float a_ip = a[i * uk + p];
      const float* b_row = b.data() + p * un;
      for (std::size_t j = 0; j < un; ++j) {
        acc[j] += a_ip * b_row[j];
      }
    }
    for (std::size_t j = 0; j < un; ++j) {
      float value = alpha * acc[j];
      if (!c.empty()) {
        value += beta * c[i * un + j];
      }
      d[i * un + j] = value;
    }
  }
  return d;
}

}  // namespace clustersim::kernels
