// CPU backend, GEMM suite: Eigen single-precision GEMM, C = A B with A [m, k] and B [k, n], the
// way a replay rank runs it (workload_replay.cpp): one thread per GEMM (Eigen without OpenMP),
// and every rank thread (cpu_rank_threads, each pinned to its CPU, each with its own operands)
// running the same GEMM at once, timed between barriers of all of them. A rank's GEMM shares
// the outer cache and memory bandwidth with the others as it does in the replay; on this 2-core
// VM a GEMM whose operands outgrow the cache runs at half the rate with both cores busy.
#include <Eigen/Dense>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

MeasurementRecord measure_cpu_gemm(const GemmCase& c, const BackendOptions& o) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  struct Operands {
    Matrix a, b, out;
  };
  const int ranks = cpu_rank_threads();
  std::vector<Operands> operands(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    Operands& x = operands[static_cast<std::size_t>(r)];
    const auto seed = static_cast<std::uint64_t>(2 * r + 1);
    x.a = Eigen::Map<const Matrix>(cpu_operand(static_cast<std::size_t>(c.m * c.k), seed).data(), c.m, c.k);
    x.b = Eigen::Map<const Matrix>(cpu_operand(static_cast<std::size_t>(c.k * c.n), seed + 1).data(), c.k, c.n);
    x.out.resize(c.m, c.n);
  }
  MeasurementRecord record;
  record.samples_s = time_ranks(ranks, o.warmup_iterations, o.iterations, [&](int rank, int) {
    Operands& x = operands[static_cast<std::size_t>(rank)];
    x.out.noalias() = x.a * x.b;
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
