#pragma once
// How a MoE router spreads a micro-batch's tokens over the experts, and what that does to the
// expert-parallel ranks: the rows each rank's experts receive, the busiest rank's expected
// share (it sets every MoE layer's pace: dispatch, expert GEMMs and combine wait for it), and
// the tokens a capacity factor drops. Pure functions; the popularity draws are the harness's
// (calibrate/routing_generator.cpp uses the same ones), so a plan and a calibration run name
// the same distributions.
#include <cstdint>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "models/inputs/routing_spec.hpp"

namespace clustersim {

// Draws shared with the harness (fixed algorithms on std::mt19937_64, so every platform draws
// the same numbers). Uniform in (0, 1), never 0.
double routing_uniform_open(std::mt19937_64& rng);
// Each expert's popularity (sums to 1) for uniform, Zipf and Dirichlet, drawing from rng.
std::vector<double> expert_popularity(RoutingKind kind, double parameter, std::int64_t experts,
                                      std::mt19937_64& rng);

// One token's Gumbel top-k over experts of log-popularity `log_p`: afterwards the first topk
// entries of `keys` (resized to the experts) are the chosen experts, best first.
void routing_top_k(const std::vector<double>& log_p, std::int64_t topk, std::mt19937_64& rng,
                   std::vector<std::pair<double, std::int32_t>>& keys);

// The probability that one token's top-k includes each expert (sums to topk): k/E for
// balanced and uniform; for skewed popularities the harness's Gumbel top-k, estimated over
// `sample_tokens` seeded tokens.
std::vector<double> expert_inclusion(const RoutingModel& model, std::int64_t experts, std::int64_t topk,
                                     std::int64_t sample_tokens = 4096);

// One MoE layer's routed rows (token copies) per expert-parallel rank, for one micro-batch.
struct ExpertLoad {
  double mean_rank_rows = 0;      // tokens x topk / EP: the balanced share
  double busiest_rank_rows = 0;   // expected maximum over the EP ranks, after drops or padding
  double imbalance = 1;           // busiest / mean
  std::int64_t busiest_rank = 0;  // the rank whose experts are the most popular
  double dropped_fraction = 0;    // of the routed copies, dropped at the capacity factor
};

struct ExpertLoadInput {
  double tokens_per_rank = 0;     // tokens each EP rank routes per micro-batch
  std::int64_t topk = 1, experts = 1, ep = 1;
  std::optional<double> capacity_factor;  // absent: dropless
  bool pad_to_capacity = false;
  bool random = true;  // counts vary per micro-batch (false: balanced, every rank its share)
};

// Rank r hosts experts [r E/EP, (r+1) E/EP). Rows a rank receives are a sum over its experts
// of Binomial counts; the busiest rank's expected maximum is taken over normal approximations
// of every rank's load (hypergeometric variance of a token's picks). A capacity factor CF caps
// each expert at ceil(tokens x topk x CF / E) rows from each source rank (Megatron drops the
// rest before the exchange); with padding every expert gets exactly that many.
ExpertLoad expert_load(const ExpertLoadInput& in, const std::vector<double>& inclusion);

// Expected maximum of independent normals N(mean_i, sd_i^2), by integration of the product of
// their distribution functions.
double expected_maximum_of_normals(const std::vector<double>& mean, const std::vector<double>& sd);

}  // namespace clustersim
