// Serving simulation: KV sizes, attention/FFN closed form vs event level, scheduler and
// hand-off invariants, trace readers and their errors, and the DistServe quick-start goodput.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/temp_files.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/cost_model.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/cost/profile_json.hpp"
#include "traces/request_trace_reader.hpp"
#include "sim/serving/serve_afd.hpp"
#include "sim/serving/serve_cost.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "sim/serving/serve_engine.hpp"
#include "sim/serving/serve_metrics.hpp"
#include "models/inputs/serve_workload.hpp"
#include "tests/sim/serving/serve_test_inputs.hpp"

namespace clustersim::sim {
namespace {


TEST(ServeKv, BytesPerTokenOfGqaAndMla) {
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(model("llama-3-70b"), Dtype::kBf16), 320.0 * 1024);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(model("llama-3-8b"), Dtype::kBf16), 128.0 * 1024);
  // DeepSeek-V3: 61 layers x (512 + 64) x 2 bytes = 70,272 B = 68.6 KiB.
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(model("deepseek-v3"), Dtype::kBf16), 61.0 * 576 * 2);
  EXPECT_NEAR(kv_bytes_per_token(model("deepseek-v3"), Dtype::kBf16) / 1024, 68.6, 0.05);
}

TEST(ServeAfd, EventLevelMatchesClosedFormWithEnoughMicroBatches) {
  for (AfdStageTimes t : {AfdStageTimes{1.0e-3, 0.9e-3, 0.3e-3}, AfdStageTimes{0.7e-3, 1.1e-3, 0.6e-3},
                          AfdStageTimes{1.0e-3, 1.0e-3, 0.9e-3}}) {
    const std::int64_t m = afd_min_micro_batches(t);
    EXPECT_GE(static_cast<double>(m), 2 * (1 + t.comm_s / std::max(t.attention_s, t.expert_s)));
    for (std::int64_t layers : {1, 16, 61}) {
      const double closed = afd_closed_form_s(t, m, layers);
      const double event = afd_event_level_s(t, m, layers);
      EXPECT_NEAR(event / closed, 1.0, 0.05) << "m=" << m << " layers=" << layers;
    }
  }
  // Too few micro-batches: the ping-pong pipeline has bubbles the closed form does not see.
  const AfdStageTimes t{1.0e-3, 1.0e-3, 0.5e-3};
  EXPECT_GT(afd_event_level_s(t, 1, 16), 1.5 * afd_closed_form_s(t, 1, 16));
  EXPECT_EQ(afd_min_micro_batches(t), 3);
}

TEST(ServeAfd, EngineReportsBothIterationTimes) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec m = model("mixtral-8x7b");
  const ServeDeployment d = deployment(R"({"pools": [
    {"name": "p", "role": "prefill", "gpus": 4, "tensor_parallel_size": 4},
    {"name": "a", "role": "attention", "gpus": 4, "tensor_parallel_size": 2, "afd": {"expert_pool": "e"}},
    {"name": "e", "role": "expert", "gpus": 8, "tensor_parallel_size": 1}]})");
  ServeSimulator sim(m, d, c, cost);
  const auto w = workload(R"({"arrival": {"process": "poisson", "rate_per_s": 20}, "count": 200,
    "input": {"distribution": "fixed", "value": 512}, "output": {"distribution": "fixed", "value": 64}})");
  const ServeOutcome o = sim.run(generate_requests(w, 20));
  ASSERT_EQ(o.pools.size(), 2u);
  const PoolOutcome& a = o.pools[1];
  ASSERT_GT(a.afd_event_level_s, 0);
  EXPECT_NEAR(a.afd_event_level_s / a.afd_closed_form_s, 1.0, 0.05);
  for (const auto& r : o.requests) EXPECT_TRUE(r.finished);
}

ServeOutcome run_colocated(const std::string& pool_json, const std::string& workload_json, double rate) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment d = deployment(R"({"pools": [)" + pool_json + "]}");
  ServeSimulator sim(model("llama-3-8b"), d, c, cost);
  return sim.run(generate_requests(workload(workload_json), rate));
}

const char* kFixedWorkload = R"({"arrival": {"process": "poisson", "rate_per_s": 5}, "count": 300,
  "input": {"distribution": "fixed", "value": 1000}, "output": {"distribution": "fixed", "value": 100}})";

TEST(ServeEngine, VllmAndSarathiFinishEveryRequestWithSaneLatencies) {
  for (const char* pool : {R"({"name": "c", "role": "colocated", "gpus": 2})",
                           R"({"name": "c", "role": "colocated", "gpus": 2, "scheduler": "sarathi", "token_budget": 256})"}) {
    const ServeOutcome o = run_colocated(pool, kFixedWorkload, 5);
    for (const auto& r : o.requests) {
      ASSERT_TRUE(r.finished);
      EXPECT_GT(r.ttft_s, 0);
      EXPECT_GE(r.e2e_s, r.ttft_s + 99 * r.tpot_s - 1e-9);
    }
    const ServeSummary s = summarise(o, {});
    EXPECT_GT(s.output_tokens_per_s, 0);
    EXPECT_EQ(s.finished, 300);
  }
}

TEST(ServeEngine, ChunkedPrefillLowersDecodeStalls) {
  // Long prompts: whole-prompt prefills stall the running decodes (vLLM), Sarathi's chunks bound
  // the stall by the token budget, so the worst TPOT drops.
  const char* w = R"({"arrival": {"process": "poisson", "rate_per_s": 2}, "count": 200,
    "input": {"distribution": "fixed", "value": 6000}, "output": {"distribution": "fixed", "value": 200}})";
  const ServeSummary v = summarise(run_colocated(R"({"name": "c", "role": "colocated", "gpus": 1})", w, 2), {});
  const ServeSummary s = summarise(run_colocated(R"({"name": "c", "role": "colocated", "gpus": 1,
    "scheduler": "sarathi", "token_budget": 512})", w, 2), {});
  EXPECT_LT(s.tpot.p99, v.tpot.p99);
}

TEST(ServeEngine, SmallKvCachePreemptsAndStillFinishes) {
  const ServeOutcome o = run_colocated(R"({"name": "c", "role": "colocated", "gpus": 1, "gpu_memory_utilization": 0.25})",
                                       R"({"arrival": {"process": "poisson", "rate_per_s": 40}, "count": 300,
    "input": {"distribution": "uniform", "min": 500, "max": 3000}, "output": {"distribution": "uniform", "min": 200, "max": 1200}})",
                                       40);
  EXPECT_GT(o.preemptions, 0);
  for (const auto& r : o.requests) EXPECT_TRUE(r.finished);
  EXPECT_GT(o.pools[0].kv_utilisation_peak, 0.9);
}

TEST(ServeEngine, PrefixCacheSkipsSharedPrefixes) {
  const std::string path = test::temp_path("mooncake.jsonl").string();
  {
    std::ofstream f(path);
    for (int i = 0; i < 50; ++i) {
      f << R"({"timestamp": )" << i * 100 << R"(, "input_length": 2048, "output_length": 16, "hash_ids": [1, 2, 3, )"
        << 100 + i << "]}\n";
    }
  }
  TraceSpec t{path, "mooncake", 1, 1, 0};
  const RequestSet set = traces::read_request_trace(t);
  ASSERT_EQ(set.requests.size(), 50u);
  EXPECT_DOUBLE_EQ(set.requests[1].arrival_s, 0.1);
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment d = deployment(R"({"router": "kv_aware", "pools": [{"name": "c", "role": "colocated", "gpus": 2, "tensor_parallel_size": 2}]})");
  ServeSimulator sim(model("llama-3-8b"), d, c, cost);
  const ServeOutcome o = sim.run(set);
  // Every request after the first reuses 3 of its 4 blocks of 512 tokens.
  EXPECT_NEAR(o.prefix_hit_share, 49.0 * 1536 / (50.0 * 2048), 1e-9);
}

TEST(ServeEngine, SpeculativeDecodingSpeedsUpSingleStream) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec target = model("llama-3-70b");
  const ModelSpec draft = model("llama-3-8b");
  const auto w = workload(R"({"arrival": {"process": "poisson", "rate_per_s": 0.05}, "count": 20,
    "input": {"distribution": "fixed", "value": 500}, "output": {"distribution": "fixed", "value": 300}})");
  const RequestSet reqs = generate_requests(w, 0.05);
  const ServeDeployment plain = deployment(R"({"pools": [{"name": "t", "role": "colocated", "gpus": 4, "tensor_parallel_size": 4}]})");
  const ServeDeployment spec = deployment(R"({"pools": [
    {"name": "t", "role": "target", "gpus": 4, "tensor_parallel_size": 4,
     "speculative": {"draft_pool": "d", "draft_tokens": 4, "acceptance_rate": 0.8}},
    {"name": "d", "role": "draft", "gpus": 1, "model": "llama-3-8b"}]})");
  const ServeSummary a = summarise(ServeSimulator(target, plain, c, cost).run(reqs), {});
  const ServeSummary b = summarise(ServeSimulator(target, spec, c, cost, &draft).run(reqs), {});
  // Chain acceptance: E = (1 - a^(g+1)) / (1 - a) = 3.36 tokens per step at a = 0.8, g = 4; a
  // verify step costs little more than a decode step at batch 1, so TPOT drops by well over 2x.
  EXPECT_LT(b.tpot.mean, a.tpot.mean / 2);
  EXPECT_GT(b.tpot.mean, a.tpot.mean / 4);
}

TEST(ServeEngine, DisaggregatedRunHandsKvOver) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment d = deployment(R"({"pools": [
    {"name": "p", "role": "prefill", "gpus": 8, "tensor_parallel_size": 2},
    {"name": "d", "role": "decode", "gpus": 8, "tensor_parallel_size": 2}]})");
  ServeSimulator sim(model("llama-3-8b"), d, c, cost);
  const ServeOutcome o = sim.run(generate_requests(workload(kFixedWorkload), 20));
  EXPECT_EQ(o.kv_transfers, 300);
  // 1000 tokens x 128 KiB over two TP shards across nodes: milliseconds, not seconds.
  EXPECT_GT(o.kv_transfer_s_mean, 1e-4);
  EXPECT_LT(o.kv_transfer_s_mean, 0.1);
  for (const auto& r : o.requests) EXPECT_TRUE(r.finished);
}

// A request the decode side admitted at once is no longer the prefill instance's: it does not
// count against the prefill's max_num_seqs while it decodes (it did, and a prefill pool of one
// sequence slot stopped after its first hand-off).
TEST(ServeEngine, HandedOffRequestsLeaveThePrefillInstance) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment d = deployment(R"({"pools": [
    {"name": "p", "role": "prefill", "gpus": 2, "tensor_parallel_size": 2, "max_num_seqs": 1},
    {"name": "d", "role": "decode", "gpus": 2, "tensor_parallel_size": 2}]})");
  const ServeOutcome o = ServeSimulator(model("llama-3-8b"), d, c, cost).run(generate_requests(workload(kFixedWorkload), 20));
  EXPECT_EQ(o.kv_transfers, 300);
  for (const auto& r : o.requests) EXPECT_TRUE(r.finished);
}

// DistServe's published OPT-13B fits (configs/measurements/a100/distserve-opt-13b-iteration.csv)
// price whole iterations: a lone 755-token prefill at TP2 and a TP1 decode step are exactly
// DistServe's a + b*sum(l) + c*sum(l^2) and a + b*sum(ctx) + c*batch.
TEST(ServeDistServe, MeasuredIterationFitsPriceWholeIterations) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec m = model_file("configs/serve/opt-13b.json");
  InstanceShape tp2;
  tp2.tp = 2;
  tp2.hbm_bytes = c.gpu.hbm_bytes;
  const IterationCost prefill(m, tp2, cost, Dtype::kFp16);
  ASSERT_NE(prefill.measured_prefill(), nullptr);
  EXPECT_EQ(prefill.measured_basis(ServePhase::kPrefill), "serve_iteration/opt-13b/tp2/prefill/fp16");
  const double l = 755;
  EXPECT_NEAR(prefill.measured_prefill()->seconds(1, l, l * l),
              (14.742973695171262 + 0.06857720739764 * l + 2.4495727400243586e-06 * l * l) * 1e-3, 1e-7);
  InstanceShape tp1 = tp2;
  tp1.tp = 1;
  const IterationCost decode(m, tp1, cost, Dtype::kFp16);
  ASSERT_NE(decode.measured_decode(), nullptr);
  EXPECT_NEAR(decode.measured_decode()->seconds(30, 24000, 0),
              (19.934702624895458 + 0.0006269356524350583 * 24000 + 0.03850697740828398 * 30) * 1e-3, 1e-7);
  EXPECT_NEAR(decode.measured_decode()->seconds(128, 128000, 0),
              (7.1661889468253595 + 0.0005798000403396046 * 128000 + 0.15831096191764046 * 128) * 1e-3, 1e-7);
  // No fit for a model the profile has not measured: composed from kernel prices.
  EXPECT_EQ(IterationCost(model("llama-3-8b"), tp1, cost, Dtype::kBf16).measured_decode(), nullptr);
}

// The TP all-reduces of a composed iteration (docs/serve.md, "TP all-reduces"): two per layer,
// priced by the profile's measured 8-GPU all-reduce inside its range, and by NCCL's tuner model
// (Ring/LL at a decode step's sizes, NVLS at large ones on H100) when the profile has none.
TEST(ServeTpAllReduce, DecodeStepPaysTwoAllReducesPerLayerAtTp8AndNoneAtTp1) {
  Diagnostics diag;
  const ClusterSpec c = load_cluster_spec(kSource + "/configs/clusters/h100-ndr.json", "h100-ndr", diag);
  const Profile measured = load_profile(kSource + "/configs/profiles/h100.json");
  Profile unmeasured = measured;
  std::erase_if(unmeasured.fits, [](const Fit& f) { return f.id == "all_reduce/any/8x1"; });
  ASSERT_EQ(unmeasured.fits.size() + 1, measured.fits.size());
  const CostModel with_fit(measured, "h100.json", c), tuner_only(unmeasured, "h100.json", c);
  const ModelSpec m = model("llama-3.1-405b");
  const double token_bytes = static_cast<double>(m.hidden_size) * 2;  // BF16, also for FP8 weights

  const PricedOp fit = with_fit.tp_all_reduce(token_bytes, 8, 1);
  EXPECT_EQ(fit.basis, "all_reduce/any/8x1");
  EXPECT_GT(fit.seconds, 20e-6);  // Azure's nccl-tests: 25-30 us at 1-32 KiB
  EXPECT_LT(fit.seconds, 35e-6);
  const PricedOp ll = tuner_only.tp_all_reduce(token_bytes, 8, 1);
  EXPECT_EQ(ll.basis, "NCCL v2.30.7 tuner model: Ring/LL over 1x8");
  // 6.6 us base + 14 ring steps of 0.6 us, plus 32 KiB at the LL ring's bus bandwidth.
  EXPECT_NEAR(ll.seconds, 15.0e-6 + token_bytes / (141e3 * 8.0 / 14.0) * 1e-6, 1e-9);
  EXPECT_EQ(tuner_only.tp_all_reduce(64.0 * 1024 * 1024, 8, 1).basis, "NCCL v2.30.7 tuner model: NVLS/Simple over 1x8");
  // Below the measured range (1 KiB): the tuner, not an extrapolated fit.
  EXPECT_EQ(with_fit.tp_all_reduce(512, 8, 1).basis, "NCCL v2.30.7 tuner model: Ring/LL over 1x8");
  EXPECT_EQ(with_fit.tp_all_reduce(token_bytes, 1, 1).seconds, 0);

  for (std::int64_t tp : {1, 8}) {
    InstanceShape s;
    s.tp = tp;
    s.max_tokens = 64;
    s.max_sequences = 64;
    s.hbm_bytes = c.gpu.hbm_bytes;
    const IterationCost a(m, s, with_fit, Dtype::kFp8), b(m, s, tuner_only, Dtype::kFp8);
    for (std::int64_t batch : {1, 64}) {
      const double bytes = static_cast<double>(batch) * token_bytes;
      const double per_layer = tp == 1 ? 0.0
                                       : 2 * (with_fit.tp_all_reduce(bytes, 8, 1).seconds -
                                              tuner_only.tp_all_reduce(bytes, 8, 1).seconds);
      EXPECT_NEAR(a.linear_s(batch) - b.linear_s(batch), static_cast<double>(m.num_layers) * per_layer, 1e-9)
          << "TP " << tp << ", batch " << batch;
    }
  }
}

// The DistServe quick-start deployment on the shipped A100 profile.
class ServeDistServeDeployment : public ::testing::Test {
 protected:
  ServeDistServeDeployment() {
    Diagnostics diag;
    d = load_serve_deployment(kSource + "/configs/serve/distserve-opt-13b-deployment.json", 4, diag);
  }
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec m = model_file("configs/serve/opt-13b.json");
  ServeDeployment d;
};

// Requests far apart: TTFT is the measured prefill alone, TPOT the measured batch-1 decode step.
TEST_F(ServeDistServeDeployment, EngineUsesTheMeasuredPrices) {
  ServeSimulator sim(m, d, c, cost);
  const ServeOutcome o = sim.run(generate_requests(workload(R"({"arrival": {"process": "poisson", "rate_per_s": 0.01},
      "count": 3, "input": {"distribution": "fixed", "value": 755}, "output": {"distribution": "fixed", "value": 11}})"),
                                                   0.01));
  ASSERT_EQ(o.pools.size(), 2u);
  EXPECT_EQ(o.pools[0].measured_fits, std::vector<std::string>{"serve_iteration/opt-13b/tp2/prefill/fp16"});
  EXPECT_EQ(o.pools[1].measured_fits, std::vector<std::string>{"serve_iteration/opt-13b/tp1/decode/fp16"});
  EXPECT_TRUE(sim.roofline_bases().empty());
  for (const auto& r : o.requests) {
    EXPECT_NEAR(r.ttft_s, (14.742973695171262 + 0.06857720739764 * 755 + 2.4495727400243586e-06 * 755 * 755) * 1e-3, 1e-7);
    // Decode steps at contexts 756..765 (the new token included), batch 1, after the KV hand-off.
    double steps = 0;
    for (int k = 1; k <= 10; ++k) steps += (19.934702624895458 + 0.0006269356524350583 * (755 + k) + 0.03850697740828398) * 1e-3;
    EXPECT_GT(r.tpot_s, steps / 10);
    EXPECT_LT(r.tpot_s, steps / 10 + 0.001);  // plus the hand-off, spread over 10 tokens
  }
}

// DistServe simulator quick-start (simdistserve/README.md): OPT-13B, ShareGPT, one 4xA100 node,
// TTFT 200 ms and TPOT 100 ms for 90 % of requests, TP2 prefill + TP1 decode -> 1.56 req/s per
// GPU (per GPU of the 3 the configuration uses). Iterations priced by DistServe's own published
// fits; lengths: configs/serve/sharegpt-like.json (docs/serve.md says why).
TEST_F(ServeDistServeDeployment, QuickStartGoodput) {
  Diagnostics diag;
  const WorkloadSpec w = load_workload_spec(kSource + "/configs/serve/sharegpt-like.json", diag);
  ServeSimulator sim(m, d, c, cost);
  auto run = [&](double rate) { return sim.run(generate_requests(w, rate)); };
  const double joint = find_goodput(run, {0.2, 0.1, 0.9, SloRule::kJoint}, 1.0).rate_per_s / 3;
  const double separate = find_goodput(run, {0.2, 0.1, 0.9, SloRule::kSeparate}, 1.0).rate_per_s / 3;
  std::printf("DistServe quick-start goodput: %.3f req/s per GPU both targets per request, %.3f with P90 TTFT and "
              "P90 TPOT separately (reference 1.56, ratios %.2f, %.2f)\n",
              joint, separate, joint / 1.56, separate / 1.56);
  // Not within 20 % of 1.56: 2.17 for this seed (1.39x). Over workload seeds 1-10 the joint
  // goodput ranges 1.59-2.23 (mean 1.98, 1.27x); DistServe's rules on the same synthetic
  // requests give the same TTFT and attainment. The gap is the length distribution (DistServe
  // samples the real ShareGPT pairs; we have only their means), see docs/serve.md. These pin
  // today's deterministic figures against regressions.
  EXPECT_NEAR(joint, 2.167, 0.02 * 2.167);
  EXPECT_GE(separate, joint);
}

// The quick-start with DistServe's own requests: rows 0-299 of its ShareGPT sample (the shared
// reference data beside the repository; skipped without it), Poisson arrivals. DistServe's
// simulator reports 1.56 req/s per GPU.
TEST_F(ServeDistServeDeployment, QuickStartGoodputWithTheRealRows) {
  const std::string rows = kSource + "/../shared/reference/distserve/sharegpt-opt13b-seed0-1600.csv";
  if (!std::filesystem::exists(rows)) GTEST_SKIP() << "no " << rows;
  const WorkloadSpec w = workload(R"({"seed": 1, "arrival": {"process": "poisson", "rate_per_s": 4}, "count": 300,
      "pairs": {"path": ")" + rows + R"(", "first_row": 0}})");
  ASSERT_EQ(w.pairs.size(), 1600u);
  ServeSimulator sim(m, d, c, cost);
  auto run = [&](double rate) { return sim.run(generate_requests(w, rate)); };
  const GoodputResult joint = find_goodput(run, {0.2, 0.1, 0.9, SloRule::kJoint}, 1.0);
  const GoodputResult separate = find_goodput(run, {0.2, 0.1, 0.9, SloRule::kSeparate}, 1.0);
  std::printf("DistServe quick-start, real rows 0-299: goodput %.3f req/s per GPU (bracket %.3f-%.3f) both targets per "
              "request, %.3f with P90 TTFT and P90 TPOT separately (reference 1.56, ratios %.2f, %.2f)\n",
              joint.rate_per_s / 3, joint.rate_per_s / 3, joint.failing_rate_per_s / 3, separate.rate_per_s / 3,
              joint.rate_per_s / 3 / 1.56, separate.rate_per_s / 3 / 1.56);
  // The first requests are the file's first rows, in order.
  const RequestSet set = generate_requests(w, 1.0);
  EXPECT_EQ(set.requests[0].input_tokens, 55);
  EXPECT_EQ(set.requests[0].output_tokens, 4);
  EXPECT_EQ(set.requests[1].input_tokens, 829);
  EXPECT_GT(joint.rate_per_s, 0.0);
  EXPECT_GT(joint.failing_rate_per_s, joint.rate_per_s);
  EXPECT_GE(separate.rate_per_s, joint.rate_per_s);
}

// Rows of a transcribed measurement CSV (comment lines start with '#'; the first other line is
// the header), as column -> text.
std::vector<std::map<std::string, std::string>> read_measurement_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (header.empty()) {
      header = cells;
      continue;
    }
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < cells.size() && i < header.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

// The real system's deployment (configs/serve/distserve-opt-13b-c21d11.json) carries the engine
// work per iteration fitted to its measurement, not a number typed in.
TEST(ServeDistServeEngine, IterationOverheadIsTheFitOfItsMeasurement) {
  const auto rows = read_measurement_csv(kSource + "/configs/measurements/serving/vidur-vllm-cpu-overheads-a100.csv");
  ASSERT_EQ(rows.size(), 8u);
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& r : rows) {
    const double x = std::stod(r.at("batch_size"));
    const double y = (std::stod(r.at("schedule_mean_ms")) + std::stod(r.at("process_model_outputs_mean_ms"))) * 1e-3;
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double per_sequence = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double per_iteration = (sy - per_sequence * sx) / n;
  Diagnostics diag;
  const ServeDeployment d = load_serve_deployment(kSource + "/configs/serve/distserve-opt-13b-c21d11.json", 4, diag);
  EXPECT_EQ(d.engine, ServeEngine::kDistServe);
  EXPECT_NEAR(d.iteration_overhead_s, per_iteration, 1e-9);
  EXPECT_NEAR(d.iteration_overhead_per_sequence_s, per_sequence, 1e-9);
  EXPECT_EQ(d.sources.size(), 2u);
}

// A decode instance too small for its load: DistServe's engine swaps decode requests out to host
// memory and back (no recompute: the prefill instance prefills every prompt once), vLLM's
// preempts them by recompute on the prefill instance.
TEST(ServeDistServeEngine, FullDecodeSwapsInsteadOfRecomputing) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec m = model_file("configs/serve/opt-13b.json");
  const WorkloadSpec w = workload(R"({"arrival": {"process": "poisson", "rate_per_s": 20}, "count": 60,
      "input": {"distribution": "fixed", "value": 600}, "output": {"distribution": "fixed", "value": 300}})");
  auto run = [&](const char* engine) {
    const ServeDeployment d = deployment(std::string(R"({"dtype": "fp16", "engine": ")") + engine + R"(", "pools": [
      {"name": "p", "role": "prefill", "gpus": 2, "tensor_parallel_size": 2},
      {"name": "d", "role": "decode", "gpus": 1, "gpu_memory_utilization": 0.4, "watermark": 0}]})");
    ServeSimulator sim(m, d, c, cost);
    return sim.run(generate_requests(w, 20));
  };
  const ServeOutcome distserve = run("distserve"), vllm = run("vllm");
  EXPECT_GT(distserve.preemptions, 0);
  EXPECT_GT(vllm.preemptions, 0);
  for (const auto& r : distserve.requests) EXPECT_TRUE(r.finished);
  // DistServe: one hand-off per request, and the prefill pool's tokens are the prompts, once.
  EXPECT_EQ(distserve.kv_transfers, 60);
  EXPECT_NEAR(distserve.pools[0].mean_batch_tokens * static_cast<double>(distserve.pools[0].iterations), 60.0 * 600, 1e-6);
  EXPECT_GT(vllm.pools[0].mean_batch_tokens * static_cast<double>(vllm.pools[0].iterations), 60.0 * 600);
}

// DistServe's real-system runs (dev set: configs/measurements/serving/distserve-opt-13b-c21d11-results.csv)
// replayed at their own issue times (the shared reference data beside the repository; skipped
// without it): two below the knee, at it and past it. Joint attainment within 4 points; below
// 2 req/s per GPU the P90 TTFT and P90 TPOT within 20 %.
TEST(ServeDistServeEngine, RealSystemRunsAtTheirIssueTimes) {
  const std::string dir = kSource + "/../shared/reference/distserve/real-system-workloads";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ModelSpec m = model_file("configs/serve/opt-13b.json");
  Diagnostics diag;
  const ServeDeployment d = load_serve_deployment(kSource + "/configs/serve/distserve-opt-13b-c21d11.json", 4, diag);
  ServeSimulator sim(m, d, c, cost);
  std::map<std::string, std::map<std::string, std::string>> measured;
  for (const auto& r : read_measurement_csv(kSource + "/configs/measurements/serving/distserve-opt-13b-c21d11-results.csv")) {
    measured[r.at("run")] = r;
  }
  ASSERT_EQ(measured.size(), 13u);
  for (const std::string run : {"distserve-c21d11-300-3", "distserve-c21d11-450-4.5", "distserve-c21d11-600-6",
                                "distserve-c21d11-750-7.5"}) {
    const WorkloadSpec w = workload(R"({"trace": {"path": ")" + dir + "/" + run + R"(.csv", "format": "azure"}})");
    const ServeOutcome o = sim.run(traces::read_request_trace(*w.trace));
    const ServeSummary s = summarise(o, {0.2, 0.1, 0.9, SloRule::kJoint});
    const auto& real = measured.at(run);
    std::printf("%s: attainment %.1f%% (measured %.1f%%), P90 TTFT %.1f ms (%.1f), P90 TPOT %.1f ms (%.1f)\n", run.c_str(),
                100 * s.attainment, 100 * std::stod(real.at("joint_attainment")), 1e3 * s.ttft.p90,
                1e3 * std::stod(real.at("p90_ttft_s")), 1e3 * s.tpot.p90, 1e3 * std::stod(real.at("p90_tpot_s")));
    EXPECT_EQ(s.requests, std::stoll(real.at("requests"))) << run;
    EXPECT_NEAR(s.attainment, std::stod(real.at("joint_attainment")), 0.04) << run;
    if (std::stod(real.at("rate_per_s")) / 3 < 2) {
      EXPECT_NEAR(s.ttft.p90 / std::stod(real.at("p90_ttft_s")), 1.0, 0.2) << run;
      EXPECT_NEAR(s.tpot.p90 / std::stod(real.at("p90_tpot_s")), 1.0, 0.2) << run;
    }
  }
}

TEST(ServeMetrics, SeparateRuleCountsEachTargetOnItsOwn) {
  ServeOutcome o;
  o.gpus = 1;
  for (int i = 0; i < 10; ++i) {
    RequestOutcome r;
    r.arrival_s = i;
    r.finished = true;
    r.output_tokens = 10;
    r.ttft_s = i == 0 ? 0.5 : 0.1;  // request 0 misses TTFT only
    r.tpot_s = i == 1 ? 0.5 : 0.05;  // request 1 misses TPOT only
    r.e2e_s = r.ttft_s + 9 * r.tpot_s;
    o.requests.push_back(r);
  }
  const ServeSummary joint = summarise(o, {0.2, 0.1, 0.9, SloRule::kJoint});
  EXPECT_DOUBLE_EQ(joint.attainment, 0.8);
  EXPECT_DOUBLE_EQ(joint.ttft_attainment, 0.9);
  EXPECT_DOUBLE_EQ(joint.tpot_attainment, 0.9);
  EXPECT_DOUBLE_EQ(joint.rule_attainment, 0.8);
  EXPECT_DOUBLE_EQ(summarise(o, {0.2, 0.1, 0.9, SloRule::kSeparate}).rule_attainment, 0.9);
}

// The goodput bisection reports its bracket: the highest rate found meeting the SLO and the
// lowest found missing it, within the tolerance; with no failing rate, no upper end.
TEST(ServeMetrics, GoodputReportsItsBracket) {
  auto outcome_at = [](double rate, double knee) {
    ServeOutcome o;
    o.gpus = 1;
    RequestOutcome r;
    r.finished = true;
    r.output_tokens = 10;
    r.ttft_s = rate <= knee ? 0.1 : 0.5;
    r.tpot_s = 0.05;
    r.e2e_s = r.ttft_s + 9 * r.tpot_s;
    o.requests.push_back(r);
    return o;
  };
  const ServeSlo slo{0.2, 0.1, 0.9, SloRule::kJoint};
  const GoodputResult g = find_goodput([&](double rate) { return outcome_at(rate, 3.3); }, slo, 1.0, 0.01);
  EXPECT_LE(g.rate_per_s, 3.3);
  EXPECT_GT(g.failing_rate_per_s, 3.3);
  EXPECT_LE(g.failing_rate_per_s - g.rate_per_s, 0.01 * g.failing_rate_per_s);
  const GoodputResult never = find_goodput([&](double rate) { return outcome_at(rate, 1e9); }, slo, 1.0, 0.01);
  EXPECT_EQ(never.failing_rate_per_s, 0.0);
  EXPECT_EQ(never.rate_per_s, 32768.0);  // 16 doublings from 1, all met
}

TEST(ServeTraces, AzureCsvWithDateTimesAndScaling) {
  const std::string path = test::temp_path("azure.csv").string();
  {
    std::ofstream f(path);
    f << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
         "2023-11-16 18:15:46.6805900,374,44\n"
         "2023-11-16 18:15:50.9951690,396,109\n"
         "2023-11-16 18:15:47.0000000,100,10\n";
  }
  TraceSpec t{path, "azure", 0.5, 2.0, 0};
  const RequestSet s = traces::read_request_trace(t);
  ASSERT_EQ(s.requests.size(), 3u);
  EXPECT_DOUBLE_EQ(s.requests[0].arrival_s, 0);
  EXPECT_EQ(s.requests[1].input_tokens, 200);  // sorted by time; lengths doubled
  EXPECT_NEAR(s.requests[2].arrival_s, (50.9951690 - 46.6805900) * 0.5, 1e-6);
  EXPECT_EQ(s.requests[2].output_tokens, 218);
}

TEST(ServeTraces, BadLinesNameTheirLine) {
  const std::string path = test::temp_path("bad.csv").string();
  {
    std::ofstream f(path);
    f << "TIMESTAMP,ContextTokens,GeneratedTokens\n1.0,10,5\n2.0,ten,5\n";
  }
  try {
    traces::read_request_trace({path, "azure", 1, 1, 0});
    FAIL() << "no error";
  } catch (const InputErrors& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].pointer, "line 3");
    EXPECT_NE(e.errors()[0].message.find("ContextTokens \"ten\""), std::string::npos);
  }
}

TEST(ServeWorkload, LognormalMeansAndSeededDraws) {
  WorkloadSpec w = workload(kSource + "/configs/serve/sharegpt-like.json");
  const RequestSet a = generate_requests(w, 3), b = generate_requests(w, 3);
  ASSERT_EQ(a.requests.size(), 300u);
  for (std::size_t i = 0; i < a.requests.size(); ++i) EXPECT_EQ(a.requests[i].input_tokens, b.requests[i].input_tokens);
  // Pairs of 2048 tokens or more are redrawn; the kept pairs have DistServe's means.
  w.count = 100000;
  double in = 0, out = 0;
  for (const auto& r : generate_requests(w, 3).requests) {
    EXPECT_LT(r.input_tokens + r.output_tokens, 2048);
    in += r.input_tokens;
    out += r.output_tokens;
  }
  EXPECT_NEAR(in / 100000, 755.5, 755.5 * 0.01);
  EXPECT_NEAR(out / 100000, 200.3, 200.3 * 0.01);
}

// One hour of Azure-2023-conversation-like traffic on 64 GPUs (the benchmark's case, smaller
// bound under sanitizers: it checks it completes and stays well inside 10 s in Release).
TEST(ServeBench, AzureHourOn64Gpus) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  Diagnostics diag;
  const ServeDeployment d = load_serve_deployment(kSource + "/configs/serve/llama-3-70b-pd-64.json", 8, diag);
  const WorkloadSpec w = load_workload_spec(kSource + "/configs/serve/azure-conv-2023-like.json", diag);
  ServeSimulator sim(model("llama-3-70b"), d, c, cost);
  const RequestSet reqs = generate_requests(w, w.rate_per_s);
  EXPECT_NEAR(static_cast<double>(reqs.requests.size()), 19366, 19366 * 0.03);
  const ServeOutcome o = sim.run(reqs);
  std::printf("Azure hour: %zu requests simulated in %.3f s\n", reqs.requests.size(), o.wall_s);
  EXPECT_LT(o.wall_s, 60.0);
  for (const auto& r : o.requests) ASSERT_TRUE(r.finished);
}

}  // namespace
}  // namespace clustersim::sim
