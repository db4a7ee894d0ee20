#include "models/cost/document_packing.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace clustersim {

namespace {

// A document length drawn from the histogram (inverse CDF over the bins).
double draw_length(const DocumentLengths& d, double total_weight, FleetRandom& random) {
  double u = random.uniform() * total_weight;
  for (std::size_t i = 0; i < d.tokens.size(); ++i) {
    u -= d.weights[i];
    if (u <= 0) return d.tokens[i];
  }
  return d.tokens.back();
}

}  // namespace

double draw_packed_attention_ratio(const DocumentLengths& documents, std::int64_t seq_length, FleetRandom& random) {
  if (documents.tokens.empty() || seq_length <= 0) return 1.0;
  double total_weight = 0;
  for (double w : documents.weights) total_weight += w;
  const auto s = static_cast<double>(seq_length);
  double filled = 0, squares = 0;
  while (filled < s) {
    const double l = std::min(std::max(1.0, std::round(draw_length(documents, total_weight, random))), s - filled);
    squares += l * l;
    filled += l;
  }
  return squares / (s * s);
}

PackedAttention packed_attention(const DocumentLengths& documents, std::int64_t seq_length) {
  constexpr int kSequences = 4096;
  constexpr std::uint64_t kSeed = 0x5eedd0c5ULL;
  FleetRandom random(kSeed);
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < kSequences; ++i) {
    const double r = draw_packed_attention_ratio(documents, seq_length, random);
    sum += r;
    sum_sq += r * r;
  }
  PackedAttention p;
  p.mean = sum / kSequences;
  const double var = std::max(0.0, sum_sq / kSequences - p.mean * p.mean);
  p.cv = p.mean > 0 ? std::sqrt(var) / p.mean : 0.0;
  return p;
}

}  // namespace clustersim
