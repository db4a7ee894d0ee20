#include "models/cost/ecmp_collisions.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

namespace clustersim {

namespace {

// log(k!) for k = 0 .. n.
std::vector<double> log_factorials(int n) {
  std::vector<double> lf(static_cast<std::size_t>(n) + 1, 0.0);
  for (int k = 2; k <= n; ++k) lf[static_cast<std::size_t>(k)] = lf[static_cast<std::size_t>(k - 1)] + std::log(k);
  return lf;
}

}  // namespace

double max_bin_load_cdf(int balls, int bins, int limit) {
  if (balls <= 0) return 1.0;
  if (bins <= 0 || limit < 0) return 0.0;
  if (static_cast<long long>(limit) * bins < balls) return 0.0;
  if (limit >= balls) return 1.0;
  // ok[k]: P(k balls in the bins placed so far all hold <= limit), filling one bin at a time:
  // the next of b remaining bins takes j ~ Binomial(k, 1/b) of the k balls left.
  const std::vector<double> lf = log_factorials(balls);
  std::vector<double> ok(static_cast<std::size_t>(balls) + 1, 0.0), next(ok.size());
  ok[0] = 1.0;  // zero bins hold zero balls
  for (int b = 1; b <= bins; ++b) {
    const double log_p = -std::log(b), log_q = b > 1 ? std::log1p(-1.0 / b) : 0.0;
    for (int k = 0; k <= balls; ++k) {
      double s = 0;
      for (int j = std::max(0, b == 1 ? k : 0); j <= std::min(limit, k); ++j) {
        const auto kk = static_cast<std::size_t>(k), jj = static_cast<std::size_t>(j);
        s += std::exp(lf[kk] - lf[jj] - lf[kk - jj] + j * log_p + (k - j) * log_q) * ok[kk - jj];
      }
      next[static_cast<std::size_t>(k)] = s;
    }
    ok.swap(next);
  }
  return ok[static_cast<std::size_t>(balls)];
}

double expected_max_load_factor(std::span<const int> balls, int bins, double load_to_factor) {
  std::map<int, int> groups;  // balls -> groups with that many
  int most = 0;
  for (int b : balls) {
    if (b <= 0) continue;
    ++groups[b];
    most = std::max(most, b);
  }
  if (groups.empty() || bins <= 0) return 1.0;
  // The same few (balls, bins) shapes recur across the plans a search prices.
  thread_local std::map<std::pair<int, int>, std::vector<double>> cdfs;
  auto cdf_of = [&](int n, int limit) {
    std::vector<double>& c = cdfs[{n, bins}];
    while (static_cast<int>(c.size()) <= limit) c.push_back(max_bin_load_cdf(n, bins, static_cast<int>(c.size())));
    return c[static_cast<std::size_t>(limit)];
  };
  // P(M <= L) = prod_g P(max_g <= L); E[f(M)] = sum_L f(L) (P(M <= L) - P(M <= L - 1)).
  double expected = 0, below = 0;
  for (int limit = 0; limit <= most; ++limit) {
    double cdf = 1.0;
    for (const auto& [n, count] : groups) cdf *= std::pow(cdf_of(n, limit), count);
    expected += std::max(1.0, load_to_factor * limit) * (cdf - below);
    below = cdf;
    if (cdf >= 1.0 - 1e-15) break;
  }
  return expected;
}

}  // namespace clustersim
