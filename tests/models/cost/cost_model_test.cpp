// CostModel prices from fits, says when it extrapolates, and reads back what it wrote.
#include <gtest/gtest.h>

#include "tests/support/temp_files.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "models/cost/cost_model.hpp"
#include "models/cost/profile_json.hpp"

namespace clustersim {
namespace {

ClusterSpec eight_gpu_nodes() {
  ClusterSpec c;
  c.name = "test";
  c.gpu.sm_count = 132;
  c.gpu.hbm_bandwidth_bytes_per_s = 3.35e12;
  c.gpu.peak_dense_flops_per_s[Dtype::kBf16] = 989e12;
  c.node.gpus_per_node = 8;
  return c;
}

Fit collective_fit(CollectiveKind kind, int ranks, int nodes, double latency_s, double s_per_byte) {
  Fit f;
  f.id = std::string(to_string(kind)) + "/" + std::to_string(ranks) + "x" + std::to_string(nodes);
  f.model = CollectiveFit{kind, "any", ranks, nodes, {{1024, latency_s, s_per_byte}}};
  f.ranges["size_bytes"] = {1024, 1 << 30};
  f.error.points = 10;
  return f;
}

Profile test_profile() {
  Profile p;
  p.name = "test";
  p.gpu = "test GPU";
  // Ring all-reduce on 8 GPUs: 14 steps of 2 us, busbw 360 GB/s.
  p.fits.push_back(collective_fit(CollectiveKind::kAllReduce, 8, 1, 14 * 2e-6, 1.75 / 360e9));
  // Across nodes, one GPU per node on a rail: 2 nodes, 1 step of 5 us, 45 GB/s.
  p.fits.push_back(collective_fit(CollectiveKind::kAllReduce, 2, 2, 2 * 5e-6, 1.0 / 45e9));
  Fit g;
  g.id = "gemm/bf16";
  g.model = GemmFit{Dtype::kBf16, {4e-6, 6e12, 0.0, 3e12, 132}};
  g.ranges = {{"m", {128, 16384}}, {"n", {128, 16384}}, {"k", {128, 16384}}};
  p.fits.push_back(g);
  return p;
}

// A CPU core's GEMM fit (calibrate fit_gemm_cpu): one thread, a 1 x 1 tile, 50 GFLOP/s plus
// packing A + B + C at 30 GB/s; no memory term.
Fit cpu_gemm_fit() {
  GemmFitParameters q(2e-6, 50e9, 0.0, 1e15, 1);
  q.tile = GemmTile{1, 1, 1};
  q.packing_bytes_per_s = 30e9;
  Fit g;
  g.id = "gemm/fp32";
  g.model = GemmFit{Dtype::kFp32, q};
  return g;
}

TEST(CostModel, ExactCollectiveFitIsUsedAsIs) {
  CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  PricedOp p = cm.collective(CollectiveKind::kAllReduce, 1 << 28, 8, 1);
  EXPECT_NEAR(p.seconds, 28e-6 + (1 << 28) * 1.75 / 360e9, 1e-12);
  EXPECT_FALSE(p.extrapolated);
  EXPECT_EQ(p.basis, "all_reduce/8x1");
}

TEST(CostModel, OtherCollectivesAndGroupSizesAreRingScaledAndFlagged) {
  CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  // all_gather on 4 GPUs: 3 steps of 2 us, (3/4) S at 360 GB/s bus bandwidth.
  PricedOp p = cm.collective(CollectiveKind::kAllGather, 1 << 28, 4, 1);
  EXPECT_NEAR(p.seconds, 3 * 2e-6 + (1 << 28) * 0.75 / 360e9, 1e-12);
  EXPECT_TRUE(p.extrapolated);
}

TEST(CostModel, MultiNodeAllReduceIsARailOptimisedRing) {
  CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  const double s = 1 << 30;
  // 32 GPUs on 4 nodes, 8 rails: bus traffic 2*31/32 S at the slower of NVLink (360 GB/s) and
  // 8 rails of 45 GB/s (360 GB/s: a tie here, so either); latency: 14 NVLink steps of 2 us
  // and 6 rail steps of 5 us.
  double bus_s_per_byte = std::max(1.0 / 360e9, 1.0 / (8 * 45e9));
  double expected = 14 * 2e-6 + 6 * 5e-6 + s * 2.0 * 31 / 32 * bus_s_per_byte;
  PricedOp p = cm.collective(CollectiveKind::kAllReduce, s, 32, 4);
  EXPECT_NEAR(p.seconds, expected, 1e-9);
  EXPECT_TRUE(p.extrapolated);
  // With slower rails the network sets the pace.
  Profile slow = test_profile();
  std::get<CollectiveFit>(slow.fits[1].model).segments[0].seconds_per_byte = 1.0 / 25e9;
  CostModel cm_slow(slow, "test.json", eight_gpu_nodes());
  EXPECT_NEAR(cm_slow.collective(CollectiveKind::kAllReduce, s, 32, 4).seconds,
              14 * 2e-6 + 6 * 5e-6 + s * 2.0 * 31 / 32 / (8 * 25e9), 1e-9);
}

// Transformer Engine's FP8 cast-transpose has a fit of its own; every other memory-bound kernel,
// and a cast-transpose on a profile that did not measure one, is priced by "memory".
TEST(CostModel, CastTransposeIsPricedByItsOwnMemoryFit) {
  Profile p = test_profile();
  Fit stream;
  stream.id = "memory";
  stream.model = MemoryFit{{{0.0, 0.0, 1.0 / 3e12}}};
  p.fits.push_back(stream);
  const CostModel plain(p, "test.json", eight_gpu_nodes());
  EXPECT_DOUBLE_EQ(plain.memory_bound(3e9, kCastTranspose).seconds, 1e-3);
  Fit cast;
  cast.id = "memory/cast_transpose";
  cast.model = MemoryFit{{{0.0, 4e-6, 1.0 / 1.5e12}}};
  cast.ranges["bytes"] = {1 << 20, 1 << 26};
  p.fits.push_back(cast);
  const CostModel cm(p, "test.json", eight_gpu_nodes());
  EXPECT_DOUBLE_EQ(cm.memory_bound(3e9).seconds, 1e-3);
  EXPECT_EQ(cm.memory_bound(3e9).basis, "memory");
  const PricedOp c = cm.memory_bound(3e9, kCastTranspose);
  EXPECT_NEAR(c.seconds, 4e-6 + 2e-3, 1e-12);
  EXPECT_EQ(c.basis, "memory/cast_transpose");
  EXPECT_TRUE(c.extrapolated);  // beyond the 64 MiB it measured
}

TEST(CostModel, GemmOutsideTheFittedRangeIsFlagged) {
  CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  EXPECT_FALSE(cm.gemm({4096, 4096, 4096, 1}, Dtype::kBf16).extrapolated);
  EXPECT_TRUE(cm.gemm({65536, 4096, 4096, 1}, Dtype::kBf16).extrapolated);
  // The price says which input is outside the measured range, and by how much.
  EXPECT_TRUE(cm.gemm({4096, 4096, 4096, 1}, Dtype::kBf16).outside_range.empty());
  const PricedOp big = cm.gemm({65536, 4096, 64, 1}, Dtype::kBf16);
  ASSERT_EQ(big.outside_range.size(), 2u);
  EXPECT_EQ(big.outside_range[0].variable, "m");
  EXPECT_DOUBLE_EQ(big.outside_range[0].bound, 16384);
  EXPECT_DOUBLE_EQ(big.outside_range[0].ratio(), 4.0);
  EXPECT_EQ(big.outside_range[1].variable, "k");
  EXPECT_DOUBLE_EQ(big.outside_range[1].ratio(), 2.0);
  EXPECT_EQ(describe(big.outside_range), "m 65536 > 16384 (x4.00), k 64 < 128 (x2.00)");
  // FP16 runs on the same tensor cores: priced by the BF16 fit, flagged.
  PricedOp fp16 = cm.gemm({4096, 4096, 4096, 1}, Dtype::kFp16);
  EXPECT_TRUE(fp16.extrapolated);
  EXPECT_DOUBLE_EQ(fp16.seconds, cm.gemm({4096, 4096, 4096, 1}, Dtype::kBf16).seconds);
}

// Without a MoE fit, dispatch is the slower of its NVLink part (an all-to-all of the node's EP
// ranks) and its network part (each rank's remote bytes through its own NIC); an EP group
// strided over TP holds fewer ranks per node than the node has GPUs.
TEST(CostModel, MoeExchangeWithoutAFitIsTheSlowerOfNvlinkAndNic) {
  const CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  const double bytes = 128.0 * 1024 * 1024;
  // 16 ranks on 2 nodes: 7/16 of the bytes to the node's other 7 ranks, 8/16 to the other node.
  const PricedOp both = cm.moe_all_to_all(MoePhase::kDispatch, bytes, 1.0, 16, 2);
  const double intra = cm.collective(CollectiveKind::kAllToAll, bytes * 7 / 16 * 8 / 7, 8, 1).seconds;
  const double network = cm.collective(CollectiveKind::kAllToAll, 2 * bytes * 8 / 16, 2, 2).seconds;
  EXPECT_DOUBLE_EQ(both.seconds, std::max(intra, network));
  EXPECT_TRUE(both.extrapolated);
  // The same 16 ranks strided over TP 2 span 4 nodes: 4 per node, 12/16 of the bytes leave it.
  const PricedOp strided = cm.moe_all_to_all(MoePhase::kDispatch, bytes, 1.0, 16, 4);
  EXPECT_DOUBLE_EQ(strided.seconds,
                   std::max(cm.collective(CollectiveKind::kAllToAll, bytes * 3 / 16 * 4 / 3, 4, 1).seconds,
                            cm.collective(CollectiveKind::kAllToAll, 2 * bytes * 12 / 16, 2, 2).seconds));
  // Routing imbalance scales what the busiest rank moves.
  EXPECT_GT(cm.moe_all_to_all(MoePhase::kDispatch, bytes, 1.5, 16, 2).seconds, both.seconds);
}

// Expert GEMMs take the grouped fit of their dtype (or its 16-bit sibling); dense GEMMs never
// do, and without a grouped fit expert GEMMs are priced as dense ones.
TEST(CostModel, GroupedGemmTakesTheGroupedFitAndDenseNeverDoes) {
  Profile p = test_profile();
  const CostModel dense_only(p, "test.json", eight_gpu_nodes());
  const GemmShapeDims experts{512, 1536, 2048, 128};
  EXPECT_EQ(dense_only.gemm(experts, Dtype::kBf16, true).basis, "gemm/bf16");
  EXPECT_DOUBLE_EQ(dense_only.gemm(experts, Dtype::kBf16, true).seconds,
                   dense_only.gemm(experts, Dtype::kBf16).seconds);
  Fit g;
  g.id = "grouped_gemm/bf16";
  g.model = GroupedGemmFit{Dtype::kBf16, 4e-6, 250e12};
  g.ranges = {{"rows_per_expert", {512, 2048}}, {"experts", {128, 1024}}};
  p.fits.push_back(g);
  const CostModel with_grouped(p, "test.json", eight_gpu_nodes());
  // 128 experts x 4 us + 2 x 512 x 1536 x 2048 x 128 FLOP at 250 TFLOP/s.
  EXPECT_EQ(with_grouped.gemm(experts, Dtype::kBf16, true).basis, "grouped_gemm/bf16");
  EXPECT_NEAR(with_grouped.gemm(experts, Dtype::kBf16, true).seconds, 128 * 4e-6 + 2.0 * 512 * 1536 * 2048 * 128 / 250e12,
              1e-12);
  EXPECT_FALSE(with_grouped.gemm(experts, Dtype::kBf16, true).extrapolated);
  EXPECT_TRUE(with_grouped.gemm({4096, 1536, 2048, 8}, Dtype::kBf16, true).extrapolated);
  EXPECT_EQ(with_grouped.gemm(experts, Dtype::kFp16, true).basis, "grouped_gemm/bf16 (used for fp16)");
  EXPECT_EQ(with_grouped.gemm(experts, Dtype::kBf16).basis, "gemm/bf16");
  EXPECT_DOUBLE_EQ(with_grouped.gemm(experts, Dtype::kBf16).seconds, dense_only.gemm(experts, Dtype::kBf16).seconds);
}

// A one-point BF16 fit (a best-shape maximum: SM rate only) yields to a measured FP16 fit of
// enough points; with enough points on both sides the same dtype wins again.
TEST(CostModel, SixteenBitGemmPrefersTheSiblingFitOfEnoughPoints) {
  Profile p = test_profile();
  p.fits[2].error.points = 1;
  Fit f;
  f.id = "gemm/fp16";
  f.model = GemmFit{Dtype::kFp16, {5e-6, 5e12, 2e-6, 3e12, 132}};
  f.ranges = {{"m", {64, 4096}}, {"n", {1024, 65536}}, {"k", {1024, 32768}}};
  f.error.points = 96;
  p.fits.push_back(f);
  const CostModel weak_bf16(p, "test.json", eight_gpu_nodes());
  const PricedOp bf16 = weak_bf16.gemm({4096, 4096, 4096, 1}, Dtype::kBf16);
  EXPECT_EQ(bf16.basis, "gemm/fp16 (used for bf16)");
  EXPECT_TRUE(bf16.extrapolated);
  EXPECT_DOUBLE_EQ(bf16.seconds, weak_bf16.gemm({4096, 4096, 4096, 1}, Dtype::kFp16).seconds);
  EXPECT_EQ(weak_bf16.gemm({4096, 4096, 4096, 1}, Dtype::kFp16).basis, "gemm/fp16");

  p.fits[2].error.points = 6;
  const CostModel both(p, "test.json", eight_gpu_nodes());
  EXPECT_EQ(both.gemm({4096, 4096, 4096, 1}, Dtype::kBf16).basis, "gemm/bf16");
  EXPECT_EQ(both.gemm({4096, 4096, 4096, 1}, Dtype::kFp16).basis, "gemm/fp16");
}

TEST(CostModel, CpuGemmIsFlopsOverTheRatePlusPacking) {
  Profile p = test_profile();
  p.fits.push_back(cpu_gemm_fit());
  CostModel cm(p, "test.json", eight_gpu_nodes());
  // fp32: A + B + C of m x n x k are 4 (m k + k n + m n) bytes; no tile quantisation (65 rows
  // cost 65 / 64 of 64 rows' FLOPs).
  auto t = [](double m, double n, double k) { return 2e-6 + 2 * m * n * k / 50e9 + 4 * (m * k + k * n + m * n) / 30e9; };
  EXPECT_NEAR(cm.gemm({256, 8192, 256, 1}, Dtype::kFp32).seconds, t(256, 8192, 256), 1e-12);
  EXPECT_NEAR(cm.gemm({16, 3584, 4096, 1}, Dtype::kFp32).seconds, t(16, 3584, 4096), 1e-12);
  EXPECT_NEAR(cm.gemm({65, 256, 256, 1}, Dtype::kFp32).seconds, t(65, 256, 256), 1e-15);
}

TEST(ProfileJson, CpuGemmTileNeedsBothSidesAndPackingIsPositive) {
  Profile p = test_profile();
  p.fits.push_back(cpu_gemm_fit());
  nlohmann::json j = profile_to_json(p);
  j["fits"][3]["parameters"]["packing_bytes_per_s"] = -1.0;
  j["fits"][3]["parameters"].erase("tile_n");
  const std::string path = test::temp_path("profile_cpu_gemm.json").string();
  std::ofstream(path) << j.dump(2);
  try {
    load_profile(path);
    FAIL() << "expected an error";
  } catch (const InputErrors& e) {
    ASSERT_EQ(e.errors().size(), 2u);
    EXPECT_EQ(e.errors()[0].pointer, "/fits/3/parameters/tile_n");
    EXPECT_EQ(e.errors()[1].pointer, "/fits/3/parameters/packing_bytes_per_s");
  }
  std::remove(path.c_str());
}

TEST(CostModel, AMissingFitIsAnInputErrorNamingTheProfile) {
  CostModel cm(test_profile(), "test.json", eight_gpu_nodes());
  try {
    cm.gemm({4096, 4096, 4096, 1}, Dtype::kFp8);
    FAIL() << "expected an error";
  } catch (const InputErrors& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].file, "test.json");
    EXPECT_EQ(e.errors()[0].pointer, "/fits");
    EXPECT_NE(e.errors()[0].message.find("fp8 GEMM"), std::string::npos);
  }
}

TEST(ProfileJson, WhatIsWrittenReadsBackIdentically) {
  Profile p = test_profile();
  p.fits.push_back(cpu_gemm_fit());
  Fit grouped;
  grouped.id = "grouped_gemm/bf16";
  grouped.model = GroupedGemmFit{Dtype::kBf16, 4e-6, 250e12};
  p.fits.push_back(grouped);
  RecordSource s;
  s.id = "src";
  s.kind = "literature";
  s.gpu = "test GPU";
  s.timer = "published";
  s.statistic = "mean";
  p.measurements.sources.push_back(s);
  p.measurements.records.push_back({"src", "line 3", CollectiveRecord{CollectiveKind::kAllReduce, 8, 1, "any", "any", 1024, "float", true}, {25e-6}});
  p.fits[0].records = {0};
  p.fits[0].error.loo_mape = 0.02;
  std::string path = test::temp_path("profile_roundtrip.json").string();
  std::string first = profile_to_json(p).dump(2);
  std::ofstream(path) << first;
  Profile back = load_profile(path);
  EXPECT_EQ(profile_to_json(back).dump(2), first);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace clustersim
