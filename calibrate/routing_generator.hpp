#pragma once
// MoE routing for the harness: which top-k experts each token picks, drawn from a named
// distribution with a fixed seed, or read from a file. Deterministic on every platform (own
// samplers on std::mt19937_64, whose output the standard fixes). Pure C++.
#include <cstdint>
#include <string>

#include "kernels/moe_reference.hpp"

namespace clustersim::calibrate {

enum class RoutingKind {
  kUniform,    // every expert equally likely
  kZipf,       // expert of popularity rank r has weight 1 / (r + 1)^zipf_s (ranks shuffled by seed)
  kDirichlet,  // expert popularities drawn once from Dirichlet(alpha, ..., alpha)
  kFile,       // read from `path`
};

struct RoutingSpec {
  RoutingKind kind = RoutingKind::kUniform;
  double zipf_s = 1.2;
  double dirichlet_alpha = 0.5;
  std::uint64_t seed = 7;
  std::string path;  // kFile
};

// "uniform", "zipf1.2", "dirichlet0.5", "file:<path>": the form labels use and --routing takes.
std::string to_string(const RoutingSpec& spec);
// Throws std::invalid_argument on an unknown form.
RoutingSpec routing_spec_from_string(const std::string& text, std::uint64_t seed);

// Every token picks topk distinct experts, without replacement in proportion to the experts'
// popularity (Gumbel top-k); its weights are the chosen popularities, normalised to sum to 1.
// Throws std::invalid_argument for non-positive sizes, topk > experts, or a bad parameter.
kernels::MoeRouting generate_routing(std::int64_t tokens, std::int64_t experts, std::int64_t topk,
                                     const RoutingSpec& spec);

// A routing file: one token per line, its experts separated by spaces or commas, each
// optionally `expert:weight` (weights default to 1/topk); '#' starts a comment. Every token must
// name the same number of experts. Throws std::invalid_argument naming the line.
kernels::MoeRouting load_routing_file(const std::string& path, std::int64_t experts);

}  // namespace clustersim::calibrate
