// MoE sweep: dispatch, grouped expert GEMM and combine across expert-parallel ranks, with
// uniform, Zipf and Dirichlet routing (and a routing file when the case names one).
#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

std::vector<SweepCase> moe_sweep(const SweepOptions& o) {
  std::vector<SweepCase> cases;
  const bool cpu = o.scale == SweepScale::kCpu;
  const std::vector<std::string> routings = {"uniform", "zipf1.2", "dirichlet0.3"};
  struct Shape {
    std::string model;
    std::int64_t hidden, ffn, experts, topk;
  };
  std::vector<Shape> shapes;
  std::vector<std::int64_t> tokens;
  int ranks = o.gpus;
  if (cpu) {
    shapes = {{"synthetic", 256, 256, 8, 2}};
    tokens = {128, 512};
    ranks = 2;
  } else {
    for (const char* name : {"mixtral-8x7b", "qwen3-235b-a22b"}) {
      const ModelSpec m = load_sweep_model(name);
      if (m.num_experts % ranks != 0) continue;
      shapes.push_back({name, m.hidden_size, m.moe_intermediate_size > 0 ? m.moe_intermediate_size
                                                                         : m.intermediate_size,
                        m.num_experts, m.num_experts_per_tok});
    }
    tokens = {128, 512, 2048, 4096};
  }
  for (const Shape& s : shapes) {
    for (std::int64_t t : tokens) {
      for (const auto& routing : routings) {
        MoeCase c{s.model, ranks, t, s.hidden, s.ffn, s.experts, s.topk,
                  routing_spec_from_string(routing, o.seed), cpu ? "fp32" : "bf16"};
        cases.push_back({Suite::kMoe,
                         fmt::format("moe {} ep{} {}tok h{} f{} e{} top{} {} seed{}", s.model, ranks,
                                     t, s.hidden, s.ffn, s.experts, s.topk, routing, o.seed),
                         c});
      }
    }
  }
  return cases;
}

}  // namespace clustersim::calibrate
