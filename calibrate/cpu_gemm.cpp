// CPU backend, GEMM suite: Eigen single-precision GEMM (one thread per GEMM unless Eigen was
// built with OpenMP), C = A B with A [m, k] and B [k, n].
#include <Eigen/Dense>

#include "cpu_backend.hpp"
#include "thread_communicator.hpp"

namespace clustersim::calibrate {

MeasurementRecord measure_cpu_gemm(const GemmCase& c, const BackendOptions& o) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::vector<float> a_values = cpu_operand(static_cast<std::size_t>(c.m * c.k), 1);
  const std::vector<float> b_values = cpu_operand(static_cast<std::size_t>(c.k * c.n), 2);
  const Eigen::Map<const Matrix> a(a_values.data(), c.m, c.k);
  const Eigen::Map<const Matrix> b(b_values.data(), c.k, c.n);
  Matrix out(c.m, c.n);
  MeasurementRecord record;
  record.samples_s = time_ranks(1, o.warmup_iterations, o.iterations, [&](int, int) {
    out.noalias() = a * b;
  });
  GemmRecord g;
  g.m = c.m;
  g.n = c.n;
  g.k = c.k;
  g.dtype = dtype_from_string(c.dtype).value_or(Dtype::kFp32);
  g.implementation = "eigen";
  record.shape = g;
  return record;
}

}  // namespace clustersim::calibrate
