// GEMM sweep: each model's tensor-parallel layer GEMMs at training token counts, M ramps across
// tile boundaries (M = 64 i - 1, 64 i, 64 i + 1) that show tile and wave quantisation, and on
// CPU an N ramp across the cache sizes.
#include <string>

#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

namespace {

SweepCase gemm_case(const std::string& what, std::int64_t m, std::int64_t n, std::int64_t k,
                    const std::string& dtype) {
  return {Suite::kGemm, fmt::format("gemm {} {}x{}x{} {}", what, m, n, k, dtype),
          GemmCase{m, n, k, dtype}};
}

}  // namespace

std::vector<SweepCase> gemm_sweep(const SweepOptions& o) {
  std::vector<SweepCase> cases;
  const bool cpu = o.scale == SweepScale::kCpu;
  const std::vector<std::string> dtypes = cpu ? std::vector<std::string>{"fp32"}
                                              : std::vector<std::string>{"bf16", "fp8"};
  const std::vector<std::int64_t> tokens = cpu ? std::vector<std::int64_t>{16, 64}
                                               : std::vector<std::int64_t>{1024, 4096, 8192};
  const std::vector<std::string> models = cpu ? std::vector<std::string>{o.models.front()} : o.models;
  const std::vector<int> tps = cpu ? std::vector<int>{o.tensor_parallel.back()} : o.tensor_parallel;
  for (const auto& name : models) {
    const ModelSpec model = load_sweep_model(name);
    for (int tp : tps) {
      for (const LayerGemm& g : tensor_parallel_gemms(model, tp)) {
        for (std::int64_t m : tokens) {
          for (const auto& dtype : dtypes) {
            cases.push_back(gemm_case(fmt::format("{} tp{} {}", name, tp, g.name), m, g.n, g.k, dtype));
          }
        }
      }
    }
  }
  // Ramps: a fixed N, K and M across tile edges; on GPUs also the waves of a square GEMM.
  const std::int64_t ramp_nk = cpu ? 256 : 4096;
  const std::vector<std::int64_t> ramp_m =
      cpu ? std::vector<std::int64_t>{1, 63, 64, 65, 128, 257}
          : std::vector<std::int64_t>{1, 16, 63, 64, 65, 127, 128, 129, 255, 256, 257, 512, 1024,
                                      1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384};
  for (std::int64_t m : ramp_m) {
    for (const auto& dtype : dtypes) {
      if (dtype == "fp8" && m % 16 != 0) continue;  // cuBLASLt FP8 needs 16-aligned sizes
      cases.push_back(gemm_case("ramp", m, ramp_nk, ramp_nk, dtype));
    }
  }
  // CPU: an N ramp at M = K = 256 whose operands (A + B + C) grow from 1.3 to 17 MB, across the
  // caches and up to a language-model head's width: the training-shaped GEMMs (M in the
  // hundreds) that fit_gemm_cpu separates from the packing-heavy small-M layer GEMMs above.
  if (cpu) {
    for (std::int64_t n : {512, 1024, 2048, 4096, 8192}) {
      for (const auto& dtype : dtypes) cases.push_back(gemm_case("n ramp", ramp_nk, n, ramp_nk, dtype));
    }
  }
  return cases;
}

}  // namespace clustersim::calibrate
