#include "models/accounting/expert_routing.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <utility>

namespace clustersim {

namespace {

double standard_normal(std::mt19937_64& rng) {  // Box-Muller, one of the pair
  const double u1 = routing_uniform_open(rng);
  const double u2 = routing_uniform_open(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Gamma(alpha, 1) by Marsaglia and Tsang (2000); alpha < 1 via Gamma(alpha + 1) U^(1/alpha).
double gamma_sample(std::mt19937_64& rng, double alpha) {
  if (alpha < 1.0) return gamma_sample(rng, alpha + 1.0) * std::pow(routing_uniform_open(rng), 1.0 / alpha);
  const double d = alpha - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = 0;
    double v = 0;
    do {
      x = standard_normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = routing_uniform_open(rng);
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2.0 * std::numbers::pi); }

}  // namespace

double routing_uniform_open(std::mt19937_64& rng) {
  return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
}

std::vector<double> expert_popularity(RoutingKind kind, double parameter, std::int64_t experts,
                                      std::mt19937_64& rng) {
  std::vector<double> p(static_cast<std::size_t>(experts), 1.0);
  if (kind == RoutingKind::kZipf) {
    std::vector<std::size_t> rank(p.size());
    std::iota(rank.begin(), rank.end(), 0);
    for (std::size_t i = rank.size(); i > 1; --i) {  // Fisher-Yates with our own draws
      std::swap(rank[i - 1], rank[static_cast<std::size_t>(routing_uniform_open(rng) * static_cast<double>(i))]);
    }
    for (std::size_t e = 0; e < p.size(); ++e) p[e] = 1.0 / std::pow(static_cast<double>(rank[e] + 1), parameter);
  } else if (kind == RoutingKind::kDirichlet) {
    for (double& x : p) x = std::max(gamma_sample(rng, parameter), 1e-300);
  }
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= total;
  return p;
}

void routing_top_k(const std::vector<double>& log_p, std::int64_t topk, std::mt19937_64& rng,
                   std::vector<std::pair<double, std::int32_t>>& keys) {
  keys.resize(log_p.size());
  for (std::size_t e = 0; e < log_p.size(); ++e) {
    const double gumbel = -std::log(-std::log(routing_uniform_open(rng)));
    keys[e] = {log_p[e] + gumbel, static_cast<std::int32_t>(e)};
  }
  std::partial_sort(keys.begin(), keys.begin() + topk, keys.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
}

std::vector<double> expert_inclusion(const RoutingModel& model, std::int64_t experts, std::int64_t topk,
                                     std::int64_t sample_tokens) {
  const std::size_t n = static_cast<std::size_t>(experts);
  const double k = static_cast<double>(topk);
  if (model.kind == RoutingKind::kBalanced || model.kind == RoutingKind::kUniform) {
    return std::vector<double>(n, k / static_cast<double>(experts));
  }
  std::mt19937_64 rng(model.seed);
  std::vector<double> p;
  if (model.kind == RoutingKind::kHistogram) {
    p = model.histogram;
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x = std::max(x / total, 1e-300);
  } else {
    p = expert_popularity(model.kind, model.parameter, experts, rng);
  }
  // Gumbel top-k: the harness's draw (routing_generator.cpp), each token's picks counted.
  std::vector<double> log_p(n);
  for (std::size_t e = 0; e < n; ++e) log_p[e] = std::log(p[e]);
  std::vector<double> count(n, 0.0);
  std::vector<std::pair<double, std::int32_t>> keys;
  for (std::int64_t t = 0; t < sample_tokens; ++t) {
    routing_top_k(log_p, topk, rng, keys);
    for (std::int64_t i = 0; i < topk; ++i) count[static_cast<std::size_t>(keys[static_cast<std::size_t>(i)].second)] += 1;
  }
  for (double& c : count) c /= static_cast<double>(sample_tokens);
  return count;
}

double expected_maximum_of_normals(const std::vector<double>& mean, const std::vector<double>& sd) {
  if (mean.empty()) return 0;
  double lo = mean[0], hi = mean[0], widest = 0;
  for (std::size_t i = 0; i < mean.size(); ++i) {
    lo = std::min(lo, mean[i] - 9 * sd[i]);
    hi = std::max(hi, mean[i] + 9 * sd[i]);
    widest = std::max(widest, sd[i]);
  }
  const double top_mean = *std::max_element(mean.begin(), mean.end());
  if (widest <= 0) return top_mean;
  // E[M] = lo + integral over [lo, hi] of P(M > x); below the top mean minus 9 sd of every
  // rank P(M > x) is 1 to double precision, so the integral starts there.
  lo = std::max(lo, top_mean - 9 * widest);
  constexpr int kSteps = 4000;
  const double dx = (hi - lo) / kSteps;
  double integral = 0;
  for (int s = 0; s <= kSteps; ++s) {
    const double x = lo + dx * s;
    double all_below = 1;
    for (std::size_t i = 0; i < mean.size(); ++i) {
      all_below *= sd[i] > 0 ? normal_cdf((x - mean[i]) / sd[i]) : (x >= mean[i] ? 1.0 : 0.0);
    }
    integral += (s == 0 || s == kSteps ? 0.5 : 1.0) * (1 - all_below) * dx;
  }
  return lo + integral;
}

ExpertLoad expert_load(const ExpertLoadInput& in, const std::vector<double>& inclusion) {
  ExpertLoad out;
  const std::int64_t local = std::max<std::int64_t>(1, in.experts / in.ep);
  const double t = in.tokens_per_rank, k = static_cast<double>(in.topk), e_count = static_cast<double>(in.experts);
  const double ep = static_cast<double>(in.ep);
  out.mean_rank_rows = t * k;
  // Per source rank and expert: copies ~ Binomial(t, pi_e), capped at the capacity.
  const double capacity = in.capacity_factor ? std::ceil(t * k * *in.capacity_factor / e_count) : 0.0;
  std::vector<double> mean(static_cast<std::size_t>(in.ep), 0.0), sd(static_cast<std::size_t>(in.ep), 0.0);
  double dropped = 0;
  for (std::int64_t r = 0; r < in.ep; ++r) {
    double rank_mean = 0, rank_var = 0, share = 0;
    for (std::int64_t j = 0; j < local; ++j) {
      const double pi = inclusion[static_cast<std::size_t>(r * local + j)];
      share += pi / k;
      double kept = t * pi;
      if (in.capacity_factor) {
        const double mu = t * pi, sigma = std::sqrt(std::max(0.0, t * pi * (1 - pi)));
        double excess = std::max(0.0, mu - capacity);
        if (sigma > 0) {
          const double z = (capacity - mu) / sigma;
          excess = sigma * normal_pdf(z) - (capacity - mu) * (1 - normal_cdf(z));
        }
        dropped += excess * ep;
        kept = in.pad_to_capacity ? capacity : mu - excess;
      }
      rank_mean += kept * ep;
    }
    // A token's picks on this rank: hypergeometric-like, k draws with success share `share`.
    if (in.random && !in.pad_to_capacity) {
      const double per_token = k * share * (1 - share) * (e_count - k) / std::max(1.0, e_count - 1);
      rank_var = t * ep * std::max(0.0, per_token);
    }
    mean[static_cast<std::size_t>(r)] = rank_mean;
    sd[static_cast<std::size_t>(r)] = std::sqrt(rank_var);
  }
  out.busiest_rank = std::max_element(mean.begin(), mean.end()) - mean.begin();
  out.busiest_rank_rows = expected_maximum_of_normals(mean, sd);
  if (in.capacity_factor && !in.pad_to_capacity) {
    out.busiest_rank_rows = std::min(out.busiest_rank_rows, capacity * ep * static_cast<double>(local));
  }
  out.imbalance = out.mean_rank_rows > 0 ? out.busiest_rank_rows / out.mean_rank_rows : 1.0;
  out.dropped_fraction = t * k * ep > 0 ? dropped / (t * k * ep) : 0.0;
  return out;
}

}  // namespace clustersim
