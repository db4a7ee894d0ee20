// Balls in bins: the closed forms the estimate charges for ECMP collisions, against brute force
// and Monte Carlo.
#include "models/cost/ecmp_collisions.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/planning/ecmp_send_factor.hpp"

namespace clustersim {
namespace {

// P(max <= limit) by enumerating every assignment of `balls` balls to `bins` bins.
double brute_force_cdf(int balls, int bins, int limit) {
  int total = 1;
  for (int i = 0; i < balls; ++i) total *= bins;
  int ok = 0;
  for (int code = 0; code < total; ++code) {
    std::vector<int> load(static_cast<std::size_t>(bins), 0);
    for (int i = 0, c = code; i < balls; ++i, c /= bins) ++load[static_cast<std::size_t>(c % bins)];
    ok += *std::max_element(load.begin(), load.end()) <= limit ? 1 : 0;
  }
  return static_cast<double>(ok) / total;
}

TEST(EcmpCollisions, MaxLoadCdfMatchesEnumeration) {
  for (int balls : {1, 3, 5, 7}) {
    for (int bins : {1, 2, 3, 4}) {
      for (int limit = 0; limit <= balls; ++limit) {
        EXPECT_NEAR(max_bin_load_cdf(balls, bins, limit), brute_force_cdf(balls, bins, limit), 1e-12)
            << balls << " balls, " << bins << " bins, limit " << limit;
      }
    }
  }
}

TEST(EcmpCollisions, ExpectedFactorMatchesMonteCarlo) {
  // 8 leaves of 32 one-flow connections onto 32 uplinks, a flow at 1 / max(1, load / 2).
  const std::vector<int> balls(8, 32);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> bin(0, 31);
  double sum = 0;
  const int trials = 20000;
  for (int t = 0; t < trials; ++t) {
    int worst = 0;
    for (int n : balls) {
      std::vector<int> load(32, 0);
      for (int i = 0; i < n; ++i) worst = std::max(worst, ++load[static_cast<std::size_t>(bin(rng))]);
    }
    sum += std::max(1.0, worst / 2.0);
  }
  EXPECT_NEAR(expected_max_load_factor(balls, 32, 0.5), sum / trials, 0.01);
  // No balls, or a bundle: no loss.
  EXPECT_DOUBLE_EQ(expected_max_load_factor(std::vector<int>{}, 32, 1.0), 1.0);
}

TEST(EcmpCollisions, AdaptiveRoutingOrNoPipelineCostsNothing) {
  ClusterSpec c;
  c.node = {8, 450e9, 5e-7, 8, 50e9, 6e-7};
  c.fabric = {"rail_optimized_fat_tree", 32, 1.0, 1.0, 4e-7};
  ParallelLayout l;
  l.tp = 8;
  l.pp = 4;
  l.dp = 64;
  l.world = 8 * 4 * 64;
  EXPECT_EQ(expected_ecmp_send_factor(l, c), 1.0);
  c.fabric.routing = "ecmp";
  c.fabric.uplinks_per_leaf = 32;
  c.fabric.flows_per_peer = 2;
  const double factor = expected_ecmp_send_factor(l, c);
  EXPECT_GT(factor, 1.5);  // 64 flows (32 connections x 2) onto 32 uplinks: the busiest carries 6-7
  EXPECT_LT(factor, 5.0);
  c.fabric.flows_per_peer = 8;  // spread thinner, the planes act more as a bundle
  EXPECT_LT(expected_ecmp_send_factor(l, c), factor);
  l.pp = 1;
  l.dp = 256;
  EXPECT_EQ(expected_ecmp_send_factor(l, c), 1.0);
}

}  // namespace
}  // namespace clustersim
