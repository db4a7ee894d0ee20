// Overlap sweep: tensor-parallel AG+GEMM (QKV, gate+up) and GEMM+RS (o_proj, down) of the
// models at TP = --gpus, decomposed into chunks and (GPUs) fused over copy engines.
#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

std::vector<SweepCase> overlap_sweep(const SweepOptions& o) {
  std::vector<SweepCase> cases;
  const bool cpu = o.scale == SweepScale::kCpu;
  const std::vector<std::string> variants =
      cpu ? std::vector<std::string>{"decomposed"} : std::vector<std::string>{"decomposed", "fused_ce"};
  const auto add = [&](bool ag, const std::string& what, std::int64_t m, std::int64_t n,
                       std::int64_t k, int ranks, const std::string& dtype) {
    for (const auto& variant : variants) {
      for (int chunks : {ranks, 2 * ranks}) {
        cases.push_back({Suite::kOverlap,
                         fmt::format("{} {} {} {}x{}x{} {}r {}c {}", ag ? "ag_gemm" : "gemm_rs",
                                     variant, what, m, n, k, ranks, chunks, dtype),
                         OverlapCase{ag, variant, m, n, k, ranks, chunks, dtype}});
      }
    }
  };
  if (cpu) {
    // Full GEMM sizes (before splitting across 2 ranks). A thin GEMM beside an operand that
    // leaves the caches, so that communication and GEMM take comparable time on a CPU.
    for (std::int64_t m : {1024, 2048}) {
      for (std::int64_t thin : {32, 128}) {
        add(true, "synthetic", m, thin, 1024, 2, "fp32");
        add(false, "synthetic", m, 1024, thin, 2, "fp32");
      }
    }
    return cases;
  }
  if (o.gpus < 2) return cases;
  for (const auto& name : o.models) {
    const ModelSpec model = load_sweep_model(name);
    // Full (unsplit) GEMM: n and k as one rank sees them, scaled back to the whole layer.
    for (const LayerGemm& g : tensor_parallel_gemms(model, o.gpus)) {
      const bool row = g.name == "o_proj" || g.name == "down";
      for (std::int64_t m : {4096, 8192, 16384}) {
        if (row) {
          add(false, fmt::format("{} {}", name, g.name), m, g.n, g.k * o.gpus, o.gpus, "bf16");
        } else {
          add(true, fmt::format("{} {}", name, g.name), m, g.n * o.gpus, g.k, o.gpus, "bf16");
        }
      }
    }
  }
  return cases;
}

}  // namespace clustersim::calibrate
