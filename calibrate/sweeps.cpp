#include "calibrate/sweeps.hpp"

#include <set>
#include <stdexcept>

#include "models/accounting/model_shapes.hpp"
#include "models/inputs/preset_path.hpp"

namespace clustersim::calibrate {

std::string_view to_string(Suite suite) {
  switch (suite) {
    case Suite::kGemm: return "gemm";
    case Suite::kCollectives: return "collectives";
    case Suite::kOverlap: return "overlap";
    case Suite::kMoe: return "moe";
    case Suite::kAttention: return "attention";
    case Suite::kMemory: return "memory";
  }
  return "unknown";
}

std::vector<Suite> suites_from_string(std::string_view name) {
  const std::vector<Suite> all = {Suite::kGemm, Suite::kCollectives, Suite::kOverlap, Suite::kMoe,
                                  Suite::kAttention, Suite::kMemory};
  if (name == "all") return all;
  for (Suite s : all) {
    if (to_string(s) == name) return {s};
  }
  throw std::invalid_argument("unknown suite '" + std::string(name) +
                              "': expected gemm, collectives, overlap, moe, attention, memory or all");
}

std::vector<SweepCase> build_sweep(const std::vector<Suite>& suites, const SweepOptions& options) {
  std::vector<SweepCase> cases;
  for (Suite suite : suites) {
    std::vector<SweepCase> part;
    switch (suite) {
      case Suite::kGemm: part = gemm_sweep(options); break;
      case Suite::kCollectives: part = collective_sweep(options); break;
      case Suite::kOverlap: part = overlap_sweep(options); break;
      case Suite::kMoe: part = moe_sweep(options); break;
      case Suite::kAttention: part = attention_sweep(options); break;
      case Suite::kMemory: part = memory_sweep(options); break;
    }
    cases.insert(cases.end(), part.begin(), part.end());
  }
  std::set<std::string> labels;
  for (const auto& c : cases) {
    if (!labels.insert(c.label).second) {
      throw std::invalid_argument("sweep: two cases are labelled '" + c.label + "'");
    }
  }
  return cases;
}

ModelSpec load_sweep_model(const std::string& name) {
  Diagnostics diag;
  return load_model_spec(resolve_input(name, "models", "--models"), name, diag);
}

std::vector<LayerGemm> tensor_parallel_gemms(const ModelSpec& model, int tp) {
  if (tp <= 0) throw std::invalid_argument("tensor-parallel size must be positive");
  const LayerShapes layer = layer_shapes(model, 0);
  struct Group {
    std::string name;
    Role role;
    bool row_parallel;
  };
  const std::vector<Group> groups = {{"qkv", Role::kAttention, false},
                                     {"o_proj", Role::kAttention, true},
                                     {"gate_up", Role::kMlp, false},
                                     {"down", Role::kMlp, true}};
  std::vector<LayerGemm> gemms;
  for (const auto& g : groups) {
    LayerGemm gemm{g.name, 0, 0};
    for (const Linear& l : layer.linears) {
      if (l.role != g.role || l.sharding != Sharding::kTensorParallel) continue;
      const bool row = l.name == "o_proj" || l.name == "down_proj";
      if (row != g.row_parallel) continue;
      if (row) {
        gemm.n = l.out_features;
        gemm.k = l.in_features / tp;
      } else {
        gemm.n += l.out_features / tp;
        gemm.k = l.in_features;
      }
    }
    if (gemm.n > 0 && gemm.k > 0) gemms.push_back(gemm);
  }
  return gemms;
}

}  // namespace clustersim::calibrate
