// The fleet's expected maxima (closed form, numerical integration) against Monte Carlo of the
// draws the replay makes, and the draws' determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "models/cost/fleet_variability.hpp"

namespace clustersim {
namespace {

FleetSpec fleet(double fraction, double slowdown, double host_cv, double op_cv) {
  FleetSpec f;
  f.name = "test";
  f.slow_host_fraction = fraction;
  f.slow_host_slowdown = slowdown;
  f.host_speed_cv = host_cv;
  f.op_jitter_cv = op_cv;
  return f;
}

// Mean of the maximum of `n` draws over `trials` trials, and its standard error.
template <typename Draw>
std::pair<double, double> monte_carlo_max(std::int64_t n, int trials, Draw draw) {
  double sum = 0, sum2 = 0;
  for (int t = 0; t < trials; ++t) {
    double worst = -1e300;
    for (std::int64_t i = 0; i < n; ++i) worst = std::max(worst, draw());
    sum += worst;
    sum2 += worst * worst;
  }
  const double mean = sum / trials;
  return {mean, std::sqrt(std::max(0.0, sum2 / trials - mean * mean) / trials)};
}

TEST(FleetVariability, ExpectedMaximumOfNormalsMatchesMonteCarloAndKnownValues) {
  EXPECT_DOUBLE_EQ(expected_max_standard_normal(1), 0.0);
  EXPECT_NEAR(expected_max_standard_normal(2), 1.0 / std::sqrt(std::numbers::pi), 1e-6);  // exact: 1/sqrt(pi)
  EXPECT_NEAR(expected_max_standard_normal(8), 1.4236, 1e-3);                 // order-statistic tables
  FleetRandom random(7);
  for (std::int64_t n : {3, 8, 64, 1024}) {
    const auto [mc, se] = monte_carlo_max(n, 20000, [&] { return random.standard_normal(); });
    EXPECT_NEAR(expected_max_standard_normal(n), mc, 4 * se + 1e-3) << n;
  }
}

TEST(FleetVariability, SlowestHostMatchesMonteCarloOfTheReplaysDraws) {
  FleetRandom random(11);
  for (const FleetSpec& f : {fleet(0.005, 1.10, 0.004, 0), fleet(0.05, 1.3, 0.01, 0), fleet(0.005, 1.013, 0.0, 0)}) {
    for (std::int64_t hosts : {1, 16, 256, 2048}) {
      const auto [mc, se] = monte_carlo_max(hosts, 4000, [&] { return draw_host_factor(f, random); });
      EXPECT_NEAR(expected_slowest_host_factor(f, hosts), mc, 4 * se + 2e-4)
          << f.slow_host_fraction << " " << f.slow_host_slowdown << " " << f.host_speed_cv << " on " << hosts;
    }
  }
  // Without a spread: 1 + (s - 1) P(at least one slow host).
  EXPECT_NEAR(expected_slowest_host_factor(fleet(0.005, 1.1, 0, 0), 1536), 1.0 + 0.1 * (1 - std::pow(0.995, 1536)), 1e-12);
}

TEST(FleetVariability, GroupJitterMatchesMonteCarloAndIsOffWithoutJitter) {
  const FleetSpec f = fleet(0, 1, 0, 0.02);
  FleetRandom random(3);
  double sum = 0;
  const int trials = 20000;
  for (int t = 0; t < trials; ++t) sum += draw_group_jitter_factor(f, 8, random);
  EXPECT_NEAR(expected_group_jitter_factor(f, 8), sum / trials, 5e-4);
  EXPECT_DOUBLE_EQ(expected_group_jitter_factor(fleet(0, 1, 0, 0), 8), 1.0);
  EXPECT_DOUBLE_EQ(draw_group_jitter_factor(fleet(0, 1, 0, 0), 8, random), 1.0);
}

// The slowest of `replicas` DP replicas, each summing `m` micro-batches whose data scales them by
// 1 + N(0, cv): Monte Carlo of exactly the replay's draws (max over replicas of the mean factor).
TEST(FleetVariability, SlowestReplicaDataMatchesMonteCarlo) {
  FleetSpec f = fleet(0, 1, 0, 0);
  f.data_imbalance_cv = 0.016;
  FleetRandom random(5);
  for (auto [replicas, m] : {std::pair<std::int64_t, std::int64_t>{8, 32}, {128, 16}, {512, 4}}) {
    const auto [mc, se] = monte_carlo_max(replicas, 3000, [&, m = m] {
      double sum = 0;
      for (std::int64_t i = 0; i < m; ++i) sum += 1.0 + f.data_imbalance_cv * random.standard_normal();
      return sum / static_cast<double>(m);
    });
    EXPECT_NEAR(expected_slowest_replica_data_factor(f, replicas, m), mc, 4 * se + 1e-5) << replicas << " x " << m;
  }
  f.data_imbalance_cv = 0;
  EXPECT_DOUBLE_EQ(expected_slowest_replica_data_factor(f, 128, 16), 1.0);
}

TEST(FleetVariability, TheSameSeedDrawsTheSameNumbers) {
  FleetRandom a(2024), b(2024), c(2025);
  for (int i = 0; i < 100; ++i) {
    const double x = a.standard_normal();
    EXPECT_EQ(x, b.standard_normal());
    if (i == 0) {
      EXPECT_NE(x, c.standard_normal());
    }
  }
}

}  // namespace
}  // namespace clustersim
