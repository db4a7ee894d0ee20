#include "models/cost/fleet_variability.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <cmath>
#include <numbers>

namespace clustersim {

namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// E[max of n draws] of a distribution with CDF `cdf` whose mass lies in [lo, hi]:
// lo + integral over [lo, hi] of (1 - F(x)^n), by Simpson's rule.
template <typename Cdf>
double expected_max(Cdf cdf, double lo, double hi, std::int64_t n) {
  const int steps = 4000;
  const double h = (hi - lo) / steps;
  auto g = [&](double x) { return 1.0 - std::pow(std::clamp(cdf(x), 0.0, 1.0), static_cast<double>(n)); };
  double sum = g(lo) + g(hi);
  for (int i = 1; i < steps; ++i) sum += (i % 2 ? 4.0 : 2.0) * g(lo + i * h);
  return lo + sum * h / 3.0;
}

}  // namespace

double expected_max_standard_normal(std::int64_t n) {
  if (n <= 1) return 0.0;
  // A search asks for the same few group sizes thousands of times: the integral once per size.
  thread_local std::map<std::int64_t, double> known;
  auto it = known.find(n);
  if (it == known.end()) it = known.emplace(n, expected_max(normal_cdf, -12.0, 12.0, n)).first;
  return it->second;
}

double expected_slowest_host_factor(const FleetSpec& f, std::int64_t hosts) {
  if (hosts < 1) return 1.0;
  const double cv = f.host_speed_cv, p = f.slow_host_fraction, s = f.slow_host_slowdown;
  if (cv <= 0) return 1.0 + (s - 1.0) * (1.0 - std::pow(1.0 - p, static_cast<double>(hosts)));
  thread_local std::map<std::array<double, 4>, double> known;
  const std::array<double, 4> key = {cv, p, s, static_cast<double>(hosts)};
  if (auto it = known.find(key); it != known.end()) return it->second;
  auto cdf = [&](double x) { return (1 - p) * normal_cdf((x - 1) / cv) + p * normal_cdf((x - s) / (s * cv)); };
  return known[key] = expected_max(cdf, 1.0 - 12 * cv, s * (1.0 + 12 * cv), hosts);
}

double expected_group_jitter_factor(const FleetSpec& f, std::int64_t gpus) {
  return 1.0 + f.op_jitter_cv * expected_max_standard_normal(gpus);
}

double expected_slowest_replica_data_factor(const FleetSpec& f, std::int64_t replicas, std::int64_t microbatches) {
  if (f.data_imbalance_cv <= 0 || microbatches < 1) return 1.0;
  return 1.0 + f.data_imbalance_cv * expected_max_standard_normal(replicas) / std::sqrt(static_cast<double>(microbatches));
}

std::uint64_t FleetRandom::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double FleetRandom::uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

double FleetRandom::standard_normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2.0 * std::numbers::pi * uniform();
  spare_ = r * std::sin(a);
  has_spare_ = true;
  return r * std::cos(a);
}

double draw_host_factor(const FleetSpec& f, FleetRandom& random) {
  const bool slow = random.uniform() < f.slow_host_fraction;
  const double spread = 1.0 + f.host_speed_cv * random.standard_normal();
  return std::max(0.5, (slow ? f.slow_host_slowdown : 1.0) * spread);
}

double draw_group_jitter_factor(const FleetSpec& f, std::int64_t gpus, FleetRandom& random) {
  if (f.op_jitter_cv <= 0) return 1.0;
  double worst = -1e300;
  for (std::int64_t g = 0; g < gpus; ++g) worst = std::max(worst, random.standard_normal());
  return std::max(0.5, 1.0 + f.op_jitter_cv * worst);
}

}  // namespace clustersim
