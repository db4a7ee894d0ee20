// Fitters recover known closed forms exactly, and error statistics mean what they say.
#include <gtest/gtest.h>

#include "tests/support/temp_files.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "calibrate/alpha_beta_fitter.hpp"
#include "calibrate/gemm_fitter.hpp"
#include "calibrate/linear_cost_fitter.hpp"
#include "models/cost/measurement_record.hpp"
#include "calibrate/profile_builder.hpp"
#include "models/cost/profile_json.hpp"
#include "calibrate/serve_iteration_fitter.hpp"

namespace clustersim::calibrate {
namespace {

// Ring all-reduce over n ranks: 2(n-1) steps of latency a, 2(n-1)/n S bytes at bandwidth B.
double ring_all_reduce_s(double size, int n, double step_latency_s, double link_bytes_per_s) {
  return 2.0 * (n - 1) * step_latency_s + 2.0 * (n - 1) / n * size / link_bytes_per_s;
}

TEST(AlphaBetaFit, RingAllReduceClosedFormIsRecoveredExactly) {
  const int n = 8;
  const double step = 3e-6, bw = 370e9;
  std::vector<SizeTimePoint> points;
  for (double s = 1024; s <= 8.0 * (1 << 30); s *= 2) points.push_back({s, ring_all_reduce_s(s, n, step, bw)});
  AlphaBetaFit fit = fit_piecewise_alpha_beta(points);
  ASSERT_EQ(fit.segments.size(), 1u);
  EXPECT_NEAR(fit.segments[0].latency_s, 2.0 * (n - 1) * step, 1e-12);
  EXPECT_NEAR(fit.segments[0].seconds_per_byte * bw, 2.0 * (n - 1) / n, 1e-9);
  EXPECT_LT(fit.error.mape, 1e-9);
  ASSERT_TRUE(fit.error.loo_mape.has_value());
  EXPECT_LT(*fit.error.loo_mape, 1e-9);
  EXPECT_TRUE(fit.excluded.empty());
}

TEST(AlphaBetaFit, ProtocolSwitchIsFoundAsASecondSegment) {
  // Low latency, low bandwidth below 256 KiB (LL-like); higher latency and bandwidth above.
  std::vector<SizeTimePoint> points;
  for (double s = 1024; s <= (1 << 30); s *= 2) {
    double t = s < 256 * 1024 ? 10e-6 + s / 20e9 : 40e-6 + s / 300e9;
    points.push_back({s, t});
  }
  AlphaBetaFit fit = fit_piecewise_alpha_beta(points);
  ASSERT_EQ(fit.segments.size(), 2u);
  EXPECT_GT(fit.segments[1].min_size_bytes, 128 * 1024.0);
  EXPECT_LT(fit.segments[1].min_size_bytes, 256 * 1024.0);
  EXPECT_NEAR(fit.segments[0].latency_s, 10e-6, 1e-12);
  EXPECT_NEAR(1.0 / fit.segments[1].seconds_per_byte, 300e9, 1e-3 * 300e9);
  EXPECT_LT(fit.error.mape, 1e-9);
}

TEST(AlphaBetaFit, ASmallMessageSlowerThanMuchLargerOnesIsLeftOutAndReported) {
  std::vector<SizeTimePoint> points = {{32768, 6e-3}};  // warm-up artefact: 6 ms
  for (double s = 65536; s <= (1 << 30); s *= 2) points.push_back({s, 400e-6 + s / 190e9});
  AlphaBetaFit fit = fit_piecewise_alpha_beta(points);
  ASSERT_EQ(fit.excluded.size(), 1u);
  EXPECT_EQ(fit.excluded[0], 0u);
  EXPECT_EQ(fit.error.points, static_cast<std::int64_t>(points.size() - 1));
  EXPECT_LT(fit.error.mape, 1e-9);
}

TEST(AlphaBetaFit, ErrorsAreRelativeAndLeaveOneOutRefits) {
  // Noise of +-5 % alternating: in-sample MAPE near 5 %, leave-one-out larger.
  std::vector<SizeTimePoint> points;
  int sign = 1;
  for (double s = 1024; s <= (1 << 26); s *= 2, sign = -sign) {
    points.push_back({s, (20e-6 + s / 100e9) * (1 + 0.05 * sign)});
  }
  AlphaBetaFit fit = fit_piecewise_alpha_beta(points);
  EXPECT_NEAR(fit.error.mape, 0.05, 0.01);
  ASSERT_TRUE(fit.error.loo_mape.has_value());
  EXPECT_GE(*fit.error.loo_mape, fit.error.mape);
}

// An empty record set with one harness source, for the profile builder.
RecordSet harness_record_set(const std::string& source_id) {
  RecordSet set;
  RecordSource source;
  source.id = source_id;
  source.gpu = "cpu: test";
  source.kind = "harness";
  source.statistic = "sample";
  set.sources.push_back(source);
  return set;
}

// Adds one record of a single sample from the set's first source.
void add_record(RecordSet& set, RecordShape shape, double seconds) {
  MeasurementRecord r;
  r.source = set.sources.front().id;
  r.shape = std::move(shape);
  r.samples_s = {seconds};
  set.records.push_back(std::move(r));
}

// A copy sweep across a cache boundary (fast up to 4 MiB, then DRAM) is fitted piecewise, and
// the profile writes and reads the segments back; one published figure stays a single line.
TEST(MemoryFit, CacheAndMemoryRegimesAreSeparateSegments) {
  RecordSet set = harness_record_set("copy-sweep");
  auto add = [&](double bytes, double seconds) { add_record(set, MemoryRecord{"copy", bytes}, seconds); };
  for (double bytes = 262144; bytes <= 268435456; bytes *= 2) {
    add(bytes, bytes <= 4194304 ? 1e-6 + bytes / 80e9 : 5e-6 + bytes / 20e9);
  }
  const Profile profile = build_profile(set, {"copies", "", std::nullopt, "test"});
  const Fit* memory = nullptr;
  for (const auto& f : profile.fits) memory = f.id == "memory" ? &f : memory;
  ASSERT_NE(memory, nullptr);
  const auto& m = std::get<MemoryFit>(memory->model);
  ASSERT_EQ(m.segments.size(), 2u);
  EXPECT_NEAR(m.segments[0].seconds_per_byte, 1 / 80e9, 1e-15);
  EXPECT_NEAR(m.segments[1].seconds_per_byte, 1 / 20e9, 1e-15);
  EXPECT_LT(memory->error.mape, 1e-6);
  const std::string path = test::temp_path("memory-fit-round-trip.json").string();
  std::ofstream(path) << profile_to_json(profile).dump(1);
  const Profile back = load_profile(path);
  for (const auto& f : back.fits) {
    if (f.id == "memory") {
      EXPECT_EQ(std::get<MemoryFit>(f.model).segments.size(), 2u);
    }
  }
}

// Noisy records can make the nonnegative fit zero a coefficient the cost form needs positive
// (attention's long-sequence cost, decode's per-byte cost). The builder then fits that term alone
// and says so, and the profile it writes reads back: a CPU run on a loaded machine once wrote
// inverse_peak_s_per_flop 0, which the profile reader rightly refuses.
TEST(ProfileBuilder, ACoefficientTheFormNeedsPositiveIsNeverWrittenAsZero) {
  RecordSet set = harness_record_set("noisy");
  for (std::int64_t length : {256, 512, 1024, 2048}) {
    AttentionRecord a{AttentionPass::kForward, 1, 8, 8, length, length, 64, false, Dtype::kFp32, "eigen"};
    // Time per FLOP falling as 1 / length: all of it in the saturation term, none at long lengths.
    add_record(set, a, attention_pass_flops(a) * 1e-9 / static_cast<double>(length));
    AttentionRecord decode{AttentionPass::kDecode, 4, 8, 8, 1, length, 64, false, Dtype::kFp32, "eigen"};
    add_record(set, decode, 2e-5);  // a launch cost only: no per-byte cost visible
  }
  const Profile profile = build_profile(set, {"noisy", "", std::nullopt, "test"});
  const std::string path = test::temp_path("positive-coefficients.json").string();
  std::ofstream(path) << profile_to_json(profile).dump(1);
  const Profile back = load_profile(path);  // throws InputErrors on a zero coefficient
  int checked = 0;
  for (const auto& f : back.fits) {
    if (const auto* a = std::get_if<AttentionFit>(&f.model); a && f.id.starts_with("attention/forward/")) {
      EXPECT_GT(a->efficiency.inverse_peak_s_per_flop, 0.0);
      EXPECT_EQ(a->efficiency.half_saturation_s_per_flop_token, 0.0);
      EXPECT_NE(f.note.find("one rate for every length"), std::string::npos) << f.note;
      ++checked;
    }
    if (const auto* d = std::get_if<DecodeAttentionFit>(&f.model); d && f.id == "decode_attention") {
      EXPECT_GT(d->seconds_per_byte, 0.0);
      EXPECT_EQ(d->launch_s, 0.0);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2);
}

TEST(BusBandwidth, FactorsFollowNcclTestsConventions) {
  // doc/PERFORMANCE.md of nccl-tests: busbw = algbw x factor.
  const int n = 8;
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllReduce, n), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kReduceScatter, n), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllGather, n), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllToAll, n), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kBroadcast, n), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kReduce, n), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kSendRecv, 2), 1.0);
  // A row of the Azure ND H100 v5 all_reduce_perf log: 1 GiB at 466.35 GB/s busbw.
  double t = time_from_bus_bandwidth_s(CollectiveKind::kAllReduce, 8, 1073741824.0, 466.35e9);
  double algbw = algorithm_bandwidth_bytes_per_s(1073741824.0, t);
  EXPECT_NEAR(algbw * bus_bandwidth_factor(CollectiveKind::kAllReduce, 8), 466.35e9, 1e-3);
  EXPECT_NEAR(t, 1073741824.0 / (466.35e9 / 1.75), 1e-12);
}

TEST(GemmWaveFit, SyntheticWaveSawToothIsRecoveredExactly) {
  // Known tile 128x128 on 132 SMs: t = t0 + waves (2 BM BN K / F + w). M ramps through wave
  // boundaries, so time climbs in steps (the saw-tooth of achieved FLOP/s); two K values
  // separate the per-wave overhead from the per-FLOP rate.
  const std::int64_t sms = 132;
  const GemmFitParameters truth{4e-6, 6.0e12, 0.7e-6, 3.0e12, sms};
  std::vector<GemmPoint> points;
  for (std::int64_t m = 128; m <= 8192; m += 384) {
   for (std::int64_t k : {2048, 8192}) {
    GemmPoint p;
    p.shape = {m, 4096, k, 1};
    p.tile = GemmTile{128, 128};
    p.time_s = gemm_time_s(p.shape, &*p.tile, 2, 2, truth);
    points.push_back(p);
   }
  }
  GemmWaveFit fit = fit_gemm_waves(points, sms);
  EXPECT_NEAR(fit.parameters.launch_s, truth.launch_s, 1e-6 * truth.launch_s);
  EXPECT_NEAR(fit.parameters.sm_flops_per_s, truth.sm_flops_per_s, 1e-6 * truth.sm_flops_per_s);
  EXPECT_NEAR(fit.parameters.wave_s, truth.wave_s, 1e-6 * truth.wave_s);
  EXPECT_LT(fit.error.mape, 1e-9);
  for (const auto& p : points) EXPECT_NEAR(predict_gemm_s(p, fit.parameters), p.time_s, 1e-9 * p.time_s);
  // The achieved rate really is a saw-tooth: it falls when a new wave starts.
  auto achieved = [](const GemmPoint& p) { return 2.0 * p.shape.m * p.shape.n * p.shape.k / p.time_s; };
  bool fell = false;
  for (std::size_t i = 2; i < points.size(); ++i) fell = fell || achieved(points[i]) < achieved(points[i - 2]);
  EXPECT_TRUE(fell);
}

TEST(GemmWaveFit, SmallMBandwidthRegimeIsFitted) {
  // Skinny GEMMs are limited by bytes, square ones by FLOPs; both regimes in one fit.
  const std::int64_t sms = 132;
  const GemmFitParameters truth{3e-6, 9e12, 0.0, 2.6e12, sms};
  std::vector<GemmPoint> points;
  for (std::int64_t m : {16, 32, 64, 128, 2048, 4096, 8192}) {
    for (std::int64_t n : {4096, 7168}) {
      GemmPoint p;
      p.shape = {m, n, 7168, 1};
      p.input_bytes_per_element = 1;  // tile and split-K left to the model, as for a library
      p.output_bytes_per_element = 2;
      p.time_s = gemm_time_s(p.shape, nullptr, 1, 2, truth);
      points.push_back(p);
    }
  }
  GemmWaveFit fit = fit_gemm_waves(points, sms);
  EXPECT_TRUE(fit.bandwidth_identified);
  EXPECT_NEAR(fit.parameters.memory_bytes_per_s, truth.memory_bytes_per_s, 1e-6 * truth.memory_bytes_per_s);
  EXPECT_LT(fit.error.mape, 1e-6);
}

// A CPU core (fit_gemm_cpu): t = t0 + FLOPs / rate + (A + B + C) / packing bandwidth, on the
// CPU sweep's shapes: launch, rate and packing bandwidth come back exactly.
std::vector<GemmPoint> cpu_sweep_points(const GemmFitParameters& truth) {
  std::vector<GemmPoint> points;
  auto add = [&](std::int64_t m, std::int64_t n, std::int64_t k) {
    GemmPoint p;
    p.shape = {m, n, k, 1};
    p.input_bytes_per_element = p.output_bytes_per_element = 4;
    p.time_s = gemm_time_s(p.shape, nullptr, 4, 4, truth);
    points.push_back(p);
  };
  for (std::int64_t m : {16, 64}) {
    for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{768, 4096}, {4096, 512}, {3584, 4096}, {4096, 1792}}) add(m, n, k);
  }
  for (std::int64_t m : {1, 63, 64, 65, 128, 257}) add(m, 256, 256);
  for (std::int64_t n : {512, 1024, 2048, 4096, 8192}) add(256, n, 256);
  return points;
}

TEST(GemmCpuFit, RateAndPackingAreRecovered) {
  GemmFitParameters truth(2e-6, 53e9, 0.0, kCpuUnboundedBandwidth, 1);
  truth.tile = GemmTile{1, 1, 1};
  truth.packing_bytes_per_s = 30e9;
  const GemmWaveFit fit = fit_gemm_cpu(cpu_sweep_points(truth));
  const GemmFitParameters& g = fit.parameters;
  EXPECT_EQ(g.sm_count, 1);
  ASSERT_TRUE(g.tile.has_value());
  EXPECT_EQ(g.tile->m, 1);
  EXPECT_EQ(g.tile->n, 1);
  EXPECT_EQ(g.memory_bytes_per_s, kCpuUnboundedBandwidth);
  EXPECT_EQ(g.wave_s, 0.0);
  EXPECT_NEAR(g.launch_s, 2e-6, 1e-3 * 2e-6);
  EXPECT_NEAR(g.sm_flops_per_s, 53e9, 1e-6 * 53e9);
  EXPECT_NEAR(g.packing_bytes_per_s, 30e9, 1e-6 * 30e9);
  EXPECT_LT(fit.error.mape, 1e-6);
  ASSERT_TRUE(fit.error.loo_mape.has_value());
  EXPECT_LT(*fit.error.loo_mape, 1e-6);
}

// One rate and no packing cost: the packing term does not earn its parameter.
TEST(GemmCpuFit, APlainRateHasNoPackingTerm) {
  GemmFitParameters truth(2e-6, 50e9, 0.0, kCpuUnboundedBandwidth, 1);
  truth.tile = GemmTile{1, 1, 1};
  const GemmWaveFit fit = fit_gemm_cpu(cpu_sweep_points(truth));
  EXPECT_EQ(fit.parameters.packing_bytes_per_s, 0.0);
  EXPECT_NEAR(fit.parameters.sm_flops_per_s, 50e9, 1e-6 * 50e9);
  EXPECT_LT(fit.error.mape, 1e-6);
}

TEST(LinearCostFit, SaturatingAttentionEfficiencyIsRecovered) {
  // t / flops = a + b / seq: 1/a = 600 TFLOP/s at long sequences, half of it at seq 1024.
  const double a = 1.0 / 600e12, b = 1024.0 / 600e12;
  std::vector<LinearPoint> points;
  for (double seq : {512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0}) {
    double flops = attention_forward_flops(16384 / static_cast<std::int64_t>(seq), 16,
                                           static_cast<std::int64_t>(seq), static_cast<std::int64_t>(seq), 128, false);
    points.push_back({{flops, flops / seq}, flops * (a + b / seq)});
  }
  LinearCostFit fit = fit_linear_cost(points);
  EXPECT_NEAR(fit.coefficients[0], a, 1e-9 * a);
  EXPECT_NEAR(fit.coefficients[1], b, 1e-9 * b);
  EXPECT_LT(fit.error.mape, 1e-9);
}

TEST(LinearCostFit, TooFewPointsHaveNoLeaveOneOutError) {
  std::vector<LinearPoint> points = {{{1.0, 2.0}, 3.0}, {{1.0, 4.0}, 5.0}};
  LinearCostFit fit = fit_linear_cost(points);
  EXPECT_FALSE(fit.error.loo_mape.has_value());
}

// Serving iterations (serve_iteration_fitter.hpp). Every time below is generated exactly from
// known coefficients, so the fit must return them (to rounding) and the split point exactly.
struct DecodeCoefficients {
  double intercept_s, per_token_s, per_sequence_s;
};

// DistServe's published OPT-13B TP1 decode fits (profiler-a100-80g.distserve.json, ms -> s):
// "decoding_smallbs" below a batch of 95, "decoding_largebs" from 95 on.
constexpr DecodeCoefficients kDistServeSmallBatch{19.934702624895458e-3, 0.0006269356524350583e-3,
                                                  0.03850697740828398e-3};
constexpr DecodeCoefficients kDistServeLargeBatch{7.1661889468253595e-3, 0.0005798000403396046e-3,
                                                  0.15831096191764046e-3};

// A decode iteration of `batch` sequences of `context` tokens each: t = a + b sum(ctx) + d batch.
ServeIterationPoint decode_point(const DecodeCoefficients& k, std::int64_t batch, double context) {
  const double tokens = static_cast<double>(batch) * context;
  return {batch, tokens, 0.0, k.intercept_s + k.per_token_s * tokens + k.per_sequence_s * static_cast<double>(batch)};
}

// The grid of configs/measurements/a100/distserve-opt-13b-iteration.csv: batches on both sides
// of 95 (94 and 95 included) at four contexts, 48 points; kDistServeSmallBatch below batch 95,
// `large` from 95 on.
std::vector<ServeIterationPoint> distserve_decode_grid(const DecodeCoefficients& large) {
  std::vector<ServeIterationPoint> points;
  for (std::int64_t batch : {1, 2, 4, 8, 16, 32, 64, 94, 95, 128, 192, 256}) {
    for (double context : {64.0, 256.0, 1024.0, 2048.0}) {
      points.push_back(decode_point(batch < 95 ? kDistServeSmallBatch : large, batch, context));
    }
  }
  return points;
}

void expect_decode_segment(const ServeIterationSegment& s, std::int64_t min_batch, const DecodeCoefficients& k) {
  EXPECT_EQ(s.min_batch, min_batch);
  EXPECT_NEAR(s.intercept_s, k.intercept_s, 1e-9 * k.intercept_s);
  EXPECT_NEAR(s.per_token_s, k.per_token_s, 1e-9 * k.per_token_s);
  EXPECT_NEAR(s.per_sequence_s, k.per_sequence_s, 1e-9 * k.per_sequence_s);
  EXPECT_EQ(s.per_token_squared_s, 0.0);  // decode has no quadratic term
}

// Data generated from the fitted form: every point and every left-out point predicted exactly.
void expect_exact_fit(const FitError& error, std::size_t points) {
  EXPECT_EQ(error.points, static_cast<std::int64_t>(points));
  EXPECT_LT(error.mape, 1e-9);
  ASSERT_TRUE(error.loo_mape.has_value());
  EXPECT_LT(*error.loo_mape, 1e-9);
}

// distserve_decode_grid(large), fitted; the fit's error is checked to be exact.
ServeIterationFitResult fit_distserve_decode_grid(const DecodeCoefficients& large) {
  const auto points = distserve_decode_grid(large);
  ServeIterationFitResult fit = fit_serve_iteration(points, ServePhase::kDecode);
  expect_exact_fit(fit.error, points.size());
  return fit;
}

// Number of points a segment starting at `min_batch` and ending before `end_batch` covers.
std::size_t points_in(const std::vector<ServeIterationPoint>& points, std::int64_t min_batch, std::int64_t end_batch) {
  return static_cast<std::size_t>(std::count_if(points.begin(), points.end(), [&](const ServeIterationPoint& p) {
    return p.batch >= min_batch && p.batch < end_batch;
  }));
}

// Prefill iterations t = a + b sum(prompt) + c sum(prompt^2) with one set of coefficients: one
// segment from batch 1 (a second one would not pay for its four parameters), every coefficient
// recovered, no per-sequence term, in-sample and leave-one-out error zero.
TEST(ServeIterationFit, PrefillIsOneQuadraticSegment) {
  const double a = 4e-3, b = 6e-6, c = 2.45e-12;
  std::vector<ServeIterationPoint> points;
  for (std::int64_t batch : {1, 2, 4, 8}) {
    for (double prompt : {128.0, 512.0, 2048.0}) {
      const double tokens = static_cast<double>(batch) * prompt, squared = static_cast<double>(batch) * prompt * prompt;
      points.push_back({batch, tokens, squared, a + b * tokens + c * squared});
    }
  }
  const ServeIterationFitResult fit = fit_serve_iteration(points, ServePhase::kPrefill);
  ASSERT_EQ(fit.segments.size(), 1u);
  EXPECT_EQ(fit.segments[0].min_batch, 1);
  EXPECT_NEAR(fit.segments[0].intercept_s, a, 1e-9 * a);
  EXPECT_NEAR(fit.segments[0].per_token_s, b, 1e-9 * b);
  EXPECT_NEAR(fit.segments[0].per_token_squared_s, c, 1e-9 * c);
  EXPECT_EQ(fit.segments[0].per_sequence_s, 0.0);
  expect_exact_fit(fit.error, points.size());
}

// Decode iterations in DistServe's two regimes (its kernels change at a batch of 95) on the
// shipped data's grid: two segments, the second from exactly batch 95 (94 is measured too), all
// six published coefficients recovered.
TEST(ServeIterationFit, DecodeRegimesAreFoundAndRecovered) {
  const ServeIterationFitResult fit = fit_distserve_decode_grid(kDistServeLargeBatch);
  ASSERT_EQ(fit.segments.size(), 2u);
  expect_decode_segment(fit.segments[0], 1, kDistServeSmallBatch);
  expect_decode_segment(fit.segments[1], 95, kDistServeLargeBatch);
}

// The same grid with one regime throughout: no split is invented.
TEST(ServeIterationFit, DecodeWithOneRegimeIsOneSegment) {
  const ServeIterationFitResult fit = fit_distserve_decode_grid(kDistServeSmallBatch);
  ASSERT_EQ(fit.segments.size(), 1u);
  expect_decode_segment(fit.segments[0], 1, kDistServeSmallBatch);
}

// Three coefficients need at least four points: three give no fit (the profile builder then
// writes none), four give one exact segment.
TEST(ServeIterationFit, FewerThanFourPointsGiveNoFit) {
  const std::vector<ServeIterationPoint> four = {
      decode_point(kDistServeSmallBatch, 1, 256), decode_point(kDistServeSmallBatch, 1, 2048),
      decode_point(kDistServeSmallBatch, 8, 256), decode_point(kDistServeSmallBatch, 8, 2048)};
  for (ServePhase phase : {ServePhase::kPrefill, ServePhase::kDecode}) {
    const ServeIterationFitResult three = fit_serve_iteration({four.begin(), four.begin() + 3}, phase);
    EXPECT_TRUE(three.segments.empty());
    EXPECT_EQ(three.error.points, 0);
  }
  const ServeIterationFitResult fit = fit_serve_iteration(four, ServePhase::kDecode);
  ASSERT_EQ(fit.segments.size(), 1u);
  expect_decode_segment(fit.segments[0], 1, kDistServeSmallBatch);
}

// Each segment needs four points: a second regime of exactly four points (batches 128 and 256 at
// two contexts) is split off at its first batch; one of three points is not given a segment of
// its own, and no segment the fit chooses instead covers fewer than four points.
TEST(ServeIterationFit, EverySegmentHasAtLeastFourPoints) {
  std::vector<ServeIterationPoint> points;
  for (std::int64_t batch : {1, 2, 4, 8, 16, 32, 64}) {
    for (double context : {256.0, 2048.0}) points.push_back(decode_point(kDistServeSmallBatch, batch, context));
  }
  for (std::int64_t batch : {128, 256}) {
    for (double context : {256.0, 2048.0}) points.push_back(decode_point(kDistServeLargeBatch, batch, context));
  }
  const ServeIterationFitResult four = fit_serve_iteration(points, ServePhase::kDecode);
  ASSERT_EQ(four.segments.size(), 2u);
  expect_decode_segment(four.segments[0], 1, kDistServeSmallBatch);
  expect_decode_segment(four.segments[1], 128, kDistServeLargeBatch);

  points.pop_back();  // the large regime now has three points
  const ServeIterationFitResult three = fit_serve_iteration(points, ServePhase::kDecode);
  ASSERT_FALSE(three.segments.empty());
  for (std::size_t i = 0; i < three.segments.size(); ++i) {
    EXPECT_NE(three.segments[i].min_batch, 128);
    const std::int64_t end = i + 1 < three.segments.size() ? three.segments[i + 1].min_batch : INT64_MAX;
    EXPECT_GE(points_in(points, three.segments[i].min_batch, end), 4u) << "segment " << i;
  }
  EXPECT_GT(three.error.mape, 1e-3);  // the three points are not fitted exactly
}

// The profile builder fits one serve_iteration_linear per model, TP degree, phase and dtype,
// BF16 pooled with FP16; each fit sees only its own records; a key with three records gets none.
TEST(ServeIterationFit, ProfileBuilderKeysByModelTensorParallelPhaseAndDtype) {
  RecordSet set = harness_record_set("engine");
  auto add = [&](const std::string& model, std::int64_t tp, ServePhase phase, Dtype dtype, const ServeIterationPoint& p) {
    add_record(set, ServeIterationRecord{model, tp, phase, p.batch, p.tokens, p.tokens_squared, dtype, "test"},
               p.time_s);
  };
  const DecodeCoefficients tp2{13.3e-3, 0.34e-6, 63e-6};
  const double a = 18.1e-3, b = 0.102e-3, c = 7.12e-9;  // prefill at TP1
  for (std::int64_t batch : {1, 2, 4, 8, 16, 32}) {
    for (double context : {256.0, 2048.0}) {
      // TP1 decode half in FP16, half in BF16: one fit of 12 points.
      add("opt-13b", 1, ServePhase::kDecode, batch < 8 ? Dtype::kFp16 : Dtype::kBf16,
          decode_point(kDistServeSmallBatch, batch, context));
      add("opt-13b", 2, ServePhase::kDecode, Dtype::kFp16, decode_point(tp2, batch, context));
      const double tokens = static_cast<double>(batch) * context, squared = tokens * context;
      add("opt-13b", 1, ServePhase::kPrefill, Dtype::kFp16, {batch, tokens, squared, a + b * tokens + c * squared});
    }
  }
  for (std::int64_t batch : {1, 2, 4}) add("opt-66b", 1, ServePhase::kDecode, Dtype::kFp16, decode_point(tp2, batch, 512));
  const Profile profile = build_profile(set, {"serving", "", std::nullopt, "test"});
  std::map<std::string, const Fit*> fits;
  for (const auto& f : profile.fits) {
    if (f.id.starts_with("serve_iteration/")) fits[f.id] = &f;
  }
  ASSERT_EQ(fits.size(), 3u);
  const Fit* decode1 = fits["serve_iteration/opt-13b/tp1/decode/fp16"];
  const Fit* decode2 = fits["serve_iteration/opt-13b/tp2/decode/fp16"];
  const Fit* prefill1 = fits["serve_iteration/opt-13b/tp1/prefill/fp16"];
  ASSERT_TRUE(decode1 && decode2 && prefill1);
  const auto& m1 = std::get<ServeIterationFit>(decode1->model);
  EXPECT_EQ(m1.model, "opt-13b");
  EXPECT_EQ(m1.tensor_parallel_size, 1);
  EXPECT_EQ(m1.phase, ServePhase::kDecode);
  EXPECT_EQ(m1.dtype, Dtype::kFp16);
  ASSERT_EQ(m1.segments.size(), 1u);
  expect_decode_segment(m1.segments[0], 1, kDistServeSmallBatch);
  EXPECT_EQ(decode1->error.points, 12);
  EXPECT_EQ(decode1->records.size(), 12u);
  EXPECT_EQ(decode1->ranges.at("batch").min, 1.0);
  EXPECT_EQ(decode1->ranges.at("batch").max, 32.0);
  const auto& m2 = std::get<ServeIterationFit>(decode2->model);
  EXPECT_EQ(m2.tensor_parallel_size, 2);
  ASSERT_EQ(m2.segments.size(), 1u);
  expect_decode_segment(m2.segments[0], 1, tp2);
  const auto& p1 = std::get<ServeIterationFit>(prefill1->model);
  EXPECT_EQ(p1.phase, ServePhase::kPrefill);
  ASSERT_EQ(p1.segments.size(), 1u);
  EXPECT_NEAR(p1.segments[0].intercept_s, a, 1e-9 * a);
  EXPECT_NEAR(p1.segments[0].per_token_s, b, 1e-9 * b);
  EXPECT_NEAR(p1.segments[0].per_token_squared_s, c, 1e-9 * c);
  EXPECT_EQ(p1.segments[0].per_sequence_s, 0.0);
}

}  // namespace
}  // namespace clustersim::calibrate
