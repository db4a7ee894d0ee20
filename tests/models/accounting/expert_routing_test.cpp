// The routing model: the busiest expert-parallel rank's rows, token drop at a capacity factor,
// a hot expert's rank, and the expected maximum it rests on, against closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "models/accounting/expert_routing.hpp"

namespace clustersim {
namespace {

ExpertLoadInput qwen3_like(std::int64_t ep) {
  ExpertLoadInput in;
  in.tokens_per_rank = 4096;
  in.topk = 8;
  in.experts = 128;
  in.ep = ep;
  return in;
}

RoutingModel routing(std::string_view text) { return *parse_routing(text); }

TEST(ExpertRouting, ExpectedMaximumOfTwoStandardNormalsIsOneOverRootPi) {
  EXPECT_NEAR(expected_maximum_of_normals({0, 0}, {1, 1}), 1 / std::sqrt(std::numbers::pi), 1e-4);
  EXPECT_DOUBLE_EQ(expected_maximum_of_normals({3, 5, 4}, {0, 0, 0}), 5.0);
}

TEST(ExpertRouting, BalancedRoutingGivesEveryRankItsShare) {
  ExpertLoadInput in = qwen3_like(16);
  in.random = false;
  const ExpertLoad load = expert_load(in, expert_inclusion(routing("balanced"), 128, 8));
  EXPECT_DOUBLE_EQ(load.mean_rank_rows, 4096.0 * 8);
  EXPECT_DOUBLE_EQ(load.busiest_rank_rows, 4096.0 * 8);
  EXPECT_DOUBLE_EQ(load.dropped_fraction, 0.0);
}

TEST(ExpertRouting, UniformRoutingCostsTheExpectedMaximumOfTheRanks) {
  // 16 ranks of 8 experts: a token's picks on one rank are hypergeometric (8 of 128, 8 good):
  // variance 8 (1/16)(15/16)(120/127) per token, over 16 x 4096 tokens.
  const ExpertLoad load = expert_load(qwen3_like(16), expert_inclusion(routing("uniform"), 128, 8));
  const double sd = std::sqrt(16 * 4096 * 8 * (1.0 / 16) * (15.0 / 16) * (120.0 / 127));
  // E[max of 16 standard normals] = 1.7660 (tables of normal order statistics).
  EXPECT_NEAR(load.busiest_rank_rows, 4096.0 * 8 + 1.7660 * sd, 0.01 * sd);
  EXPECT_GT(load.imbalance, 1.0);
  EXPECT_LT(load.imbalance, 1.02);
}

TEST(ExpertRouting, CapacityFactorOneDropsTokensThatDroplessRoutingKeeps) {
  const std::vector<double> skewed = expert_inclusion(routing("zipf1.2"), 128, 8);
  const ExpertLoad dropless = expert_load(qwen3_like(8), skewed);
  ExpertLoadInput capped = qwen3_like(8);
  capped.capacity_factor = 1.0;
  const ExpertLoad dropped = expert_load(capped, skewed);
  EXPECT_DOUBLE_EQ(dropless.dropped_fraction, 0.0);
  EXPECT_GT(dropped.dropped_fraction, 0.05);
  EXPECT_LT(dropped.busiest_rank_rows, dropless.busiest_rank_rows);
  // No rank can take more than its 16 experts x 8 sources x ceil(4096 x 8 / 128) rows.
  EXPECT_LE(dropped.busiest_rank_rows, 16.0 * 8 * 256);
  // Padding fills every expert to exactly that capacity.
  capped.pad_to_capacity = true;
  EXPECT_DOUBLE_EQ(expert_load(capped, skewed).busiest_rank_rows, 16.0 * 8 * 256);
  // A generous capacity drops (almost) nothing.
  capped.pad_to_capacity = false;
  capped.capacity_factor = 100.0;
  EXPECT_LT(expert_load(capped, skewed).dropped_fraction, 1e-9);
}

TEST(ExpertRouting, OneHotExpertMakesItsRankTheBusiest) {
  RoutingModel hot;
  hot.kind = RoutingKind::kHistogram;
  hot.histogram.assign(16, 1.0);
  hot.histogram[13] = 10.0;  // hosted by rank 13 / (16 / 4) = 3
  ExpertLoadInput in;
  in.tokens_per_rank = 4096;
  in.topk = 2;
  in.experts = 16;
  in.ep = 4;
  const std::vector<double> inclusion = expert_inclusion(hot, 16, 2);
  const ExpertLoad load = expert_load(in, inclusion);
  EXPECT_EQ(load.busiest_rank, 3);
  // The hot expert is in most tokens' top-2: rank 3's share is well above a quarter.
  EXPECT_GT(inclusion[13], 0.5);
  EXPECT_GT(load.imbalance, 1.3);
  double total = 0;
  for (double p : inclusion) total += p;
  EXPECT_NEAR(total, 2.0, 1e-12);  // every token picks two experts
}

TEST(ExpertRouting, ParsesTheHarnessForms) {
  EXPECT_EQ(parse_routing("zipf")->parameter, 1.2);
  EXPECT_EQ(parse_routing("dirichlet0.3")->parameter, 0.3);
  EXPECT_EQ(parse_routing("histogram:a.json")->histogram_file, "a.json");
  EXPECT_FALSE(parse_routing("zipf-1"));
  EXPECT_FALSE(parse_routing("zipf0"));
  EXPECT_FALSE(parse_routing("skewed"));
}

}  // namespace
}  // namespace clustersim
