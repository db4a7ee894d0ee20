#pragma once
// A plan's MoE routing model (the moe_routing key): which distribution the router's choices
// follow, its parameter and seed, and a measured tokens-per-expert histogram when the plan
// names one. Reading and checking only; models/accounting/expert_routing.hpp turns it into
// rows per expert-parallel rank.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

enum class RoutingKind {
  kBalanced,   // every expert gets exactly its share (DeepSeek's "absolutely balanced" profile)
  kUniform,    // every token picks top-k distinct experts uniformly: Megatron's
               // moe_router_force_load_balancing (random router logits)
  kZipf,       // expert of popularity rank r has weight 1 / (r + 1)^s, ranks shuffled by seed
  kDirichlet,  // popularities drawn once from Dirichlet(alpha, ..., alpha)
  kHistogram,  // popularities from a measured tokens-per-expert histogram
};

struct RoutingModel {
  RoutingKind kind = RoutingKind::kBalanced;
  double parameter = 0;            // Zipf s or Dirichlet alpha
  std::uint64_t seed = 7;
  std::string histogram_file;      // kHistogram
  std::vector<double> histogram;   // kHistogram: tokens per expert (any scale)
};

// "balanced", "uniform", "zipf<s>", "dirichlet<alpha>" (parameter > 0; zipf alone is s = 1.2,
// dirichlet alone alpha = 0.5, the harness's defaults) or "histogram:<path>" (the path kept,
// not read). nullopt on anything else.
std::optional<RoutingModel> parse_routing(std::string_view text);
// What parse_routing accepts, for error hints.
std::string_view routing_forms();

// A histogram file: {"tokens_per_expert": [non-negative numbers, one per expert, not all 0]}
// (a "_source" key may say where it was measured). Errors go to `diag` with the file and the
// JSON pointer of the offending value.
std::vector<double> load_routing_histogram(const std::string& path, Diagnostics& diag);

}  // namespace clustersim
