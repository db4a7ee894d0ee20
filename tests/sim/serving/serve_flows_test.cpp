// serve --network flows: inter-instance transfers as SimGrid flows on the rail fat-tree, the
// engine driving the flow simulation (each run in its own child process). Against the closed
// form on a placement without contention, under a background training job sharing leaf
// uplinks, and for attention/FFN and speculative traffic.
#include <gtest/gtest.h>

#include <string>

#include "sim/serving/serve_engine.hpp"
#include "sim/serving/serve_metrics.hpp"
#include "tests/sim/serving/serve_test_inputs.hpp"

namespace clustersim::sim {
namespace {

// Two nodes per leaf, leaves 2:1 oversubscribed: a leaf's uplink per rail carries one NIC's
// bandwidth.
ClusterSpec a100_small_leaves() {
  ClusterSpec c = a100();
  c.fabric.nodes_per_leaf = 2;
  c.fabric.leaf_oversubscription = 2;
  return c;
}
// Prefill on node 0 (leaf 0), decode on node 3 (leaf 1), one 4000-token prompt per prefill
// iteration; and a training job on nodes 1-2 all-reducing across the same two leaves.
const std::string kCrossLeafPools = R"("pools": [
    {"name": "p", "role": "prefill", "gpus": 4, "tensor_parallel_size": 4, "max_num_batched_tokens": 4096},
    {"name": "d", "role": "decode", "gpus": 4, "tensor_parallel_size": 4, "first_node": 3}])";
const std::string kTrainingOnLeaves = R"(, "background_training":
    {"first_node": 1, "nodes": 2, "all_reduce_bytes": 2e9, "period_s": 0.05})";

// Poisson arrivals of `count` prompts of `input` tokens each.
RequestSet requests(double rate, std::int64_t count, double input) {
  Diagnostics diag;
  const WorkloadSpec w = load_workload_spec(
      R"({"seed": 7, "arrival": {"process": "poisson", "rate_per_s": 1}, "count": )" + std::to_string(count) +
          R"(, "input": {"distribution": "fixed", "value": )" + std::to_string(static_cast<int>(input)) +
          R"(}, "output": {"distribution": "lognormal", "mean": 64, "sigma": 0.5}})",
      diag);
  return generate_requests(w, rate);
}

double relative(double a, double b) { return std::abs(a - b) / b; }

// One TP4 prefill instance on node 0 hands off to one TP4 decode instance on node 1, rank k to
// rank k on the same rail: nothing else on the fabric and, one 4000-token prompt per prefill
// iteration (a batch holds 4096 tokens; ~0.8 s each), no two hand-offs at once. The flows' bytes are scaled to the measured send/recv price, so the
// fabric must give the closed form's times back.
TEST(ServeFlows, MatchClosedFormWithoutContention) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment d = deployment(R"({"pools": [
    {"name": "p", "role": "prefill", "gpus": 4, "tensor_parallel_size": 4, "max_num_batched_tokens": 4096},
    {"name": "d", "role": "decode", "gpus": 4, "tensor_parallel_size": 4, "first_node": 1}]})");
  const RequestSet reqs = requests(0.5, 60, 4000);
  const ServeOutcome closed = ServeSimulator(model("llama-3-70b"), d, c, cost).run(reqs);
  const ServeOutcome flows =
      ServeSimulator(model("llama-3-70b"), d, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  ASSERT_EQ(flows.kv_transfers, 60);
  EXPECT_EQ(flows.network, ServeNetworkMode::kFlows);
  EXPECT_EQ(flows.flows, 60 * 4);  // four rank pairs per hand-off
  EXPECT_GT(closed.kv_transfer_s_mean, 1e-3);  // ~1.3 GB over four 25 GB/s NICs
  EXPECT_LT(relative(flows.kv_transfer_s_mean, closed.kv_transfer_s_mean), 0.02);
  EXPECT_NEAR(flows.kv_transfer_slowdown_mean, 1.0, 0.02);
  const ServeSummary a = summarise(closed, {}), b = summarise(flows, {});
  EXPECT_LT(relative(b.ttft.p50, a.ttft.p50), 0.02);
  EXPECT_LT(relative(b.tpot.p50, a.tpot.p50), 0.02);
  EXPECT_LT(relative(b.e2e.p90, a.e2e.p90), 0.02);
  EXPECT_LT(relative(flows.makespan_s, closed.makespan_s), 0.02);
}

// Every hand-off from leaf 0 to leaf 1 crosses the rail's leaf uplinks. The training job
// all-reduces across the same two leaves on every rail, so it shares those uplinks and the
// hand-offs slow down.
TEST(ServeFlows, KvTransfersSlowUnderBackgroundTrainingOnASharedLeaf) {
  const ClusterSpec c = a100_small_leaves();
  const CostModel cost = a100_cost(c);
  const ServeDeployment quiet = deployment("{" + kCrossLeafPools + "}");
  const ServeDeployment shared = deployment("{" + kCrossLeafPools + kTrainingOnLeaves + "}");
  const RequestSet reqs = requests(0.5, 40, 4000);
  const ModelSpec m = model("llama-3-70b");
  const ServeOutcome alone = ServeSimulator(m, quiet, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  const ServeOutcome busy = ServeSimulator(m, shared, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  EXPECT_NEAR(alone.kv_transfer_slowdown_mean, 1.0, 0.02);
  // The training job keeps the uplinks busy (2 GB per GPU per all-reduce, back to back), so a
  // hand-off gets about half of them: close to twice as long.
  EXPECT_GT(busy.background_rounds, 10);
  EXPECT_GT(busy.kv_transfer_slowdown_mean, 1.5);
  EXPECT_GT(busy.kv_transfer_s_mean, 1.5 * alone.kv_transfer_s_mean);
  // The first token comes with the prefill; the hand-off delays the second, so E2E grows.
  EXPECT_GT(summarise(busy, {}).e2e.p50, summarise(alone, {}).e2e.p50);
  // Same inputs, same numbers: the flow simulation is deterministic.
  const ServeOutcome again = ServeSimulator(m, shared, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  EXPECT_EQ(again.kv_transfer_s_mean, busy.kv_transfer_s_mean);
  EXPECT_EQ(again.makespan_s, busy.makespan_s);
}

// "kv_transfer": "layerwise": the KV streams while the prompt's last prefill iteration runs, so
// after the prefill only the last layer's share is left (80 layers of Llama-3-70B: 1/80 of the
// whole hand-off), in closed form and on the fabric alike; with the training job on the shared
// uplinks the stream takes twice as long but still ends inside the ~0.8 s iteration.
TEST(ServeFlows, LayerwiseKvHidesTheTransferBehindThePrefill) {
  const ClusterSpec c = a100_small_leaves();
  const CostModel cost = a100_cost(c);
  const ServeDeployment whole = deployment("{" + kCrossLeafPools + "}");
  const ServeDeployment layerwise = deployment(R"({"kv_transfer": "layerwise", )" + kCrossLeafPools + "}");
  const ServeDeployment shared =
      deployment(R"({"kv_transfer": "layerwise", )" + kCrossLeafPools + kTrainingOnLeaves + "}");
  const RequestSet reqs = requests(0.5, 40, 4000);
  const ModelSpec m = model("llama-3-70b");
  const ServeOutcome a = ServeSimulator(m, whole, c, cost).run(reqs);
  const ServeOutcome b = ServeSimulator(m, layerwise, c, cost).run(reqs);
  const ServeOutcome f = ServeSimulator(m, layerwise, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  const ServeOutcome g = ServeSimulator(m, shared, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  ASSERT_EQ(b.kv_transfers, 40);
  EXPECT_NEAR(b.kv_transfer_s_mean, a.kv_transfer_s_mean / 80, 1e-9);
  EXPECT_LT(relative(f.kv_transfer_s_mean, b.kv_transfer_s_mean), 0.02);
  EXPECT_LT(summarise(b, {}).e2e.p50, summarise(a, {}).e2e.p50);
  EXPECT_GT(g.kv_transfer_slowdown_mean, 1.5);
  EXPECT_LT(relative(g.kv_transfer_s_mean, b.kv_transfer_s_mean), 0.02);
}

// The training job may not sit on a pool's GPUs: an input error naming the key.
TEST(ServeFlows, BackgroundTrainingMustNotOverlapAPool) {
  Diagnostics diag;
  EXPECT_THROW(load_serve_deployment(R"({"pools": [
    {"name": "p", "role": "prefill", "gpus": 8, "tensor_parallel_size": 4},
    {"name": "d", "role": "decode", "gpus": 8, "tensor_parallel_size": 4}],
    "background_training": {"first_node": 1, "nodes": 2, "all_reduce_bytes": 1e9, "period_s": 1}})",
                                     8, diag),
               InputErrors);
}

// Attention/FFN and speculative decoding put their traffic on the fabric too; alone, each
// iteration's communication takes what the closed form charges.
TEST(ServeFlows, AttentionFfnAndSpeculativeTrafficMatchClosedFormAlone) {
  const ClusterSpec c = a100();
  const CostModel cost = a100_cost(c);
  const ServeDeployment afd = deployment(R"({"pools": [
    {"name": "prefill", "role": "prefill", "gpus": 8, "tensor_parallel_size": 4},
    {"name": "attention", "role": "attention", "gpus": 2, "tensor_parallel_size": 2, "afd": {"expert_pool": "experts"}},
    {"name": "experts", "role": "expert", "gpus": 8, "first_node": 2}]})");
  const RequestSet reqs = requests(2, 40, 1000);
  const ModelSpec mixtral = model("mixtral-8x7b");
  const ServeOutcome a = ServeSimulator(mixtral, afd, c, cost).run(reqs);
  const ServeOutcome b = ServeSimulator(mixtral, afd, c, cost, nullptr, ServeNetworkMode::kFlows).run(reqs);
  const auto& pa = a.pools[1];
  const auto& pb = b.pools[1];
  ASSERT_GT(pa.afd_event_level_s, 0);
  EXPECT_LT(relative(pb.afd_event_level_s, pa.afd_event_level_s), 0.02);
  EXPECT_LT(relative(summarise(b, {}).tpot.p50, summarise(a, {}).tpot.p50), 0.02);

  const ServeDeployment spec = deployment(R"({"pools": [
    {"name": "t", "role": "target", "gpus": 4, "tensor_parallel_size": 4,
     "speculative": {"draft_pool": "d", "draft_tokens": 4, "acceptance_rate": 0.8}},
    {"name": "d", "role": "draft", "gpus": 1, "model": "llama-3-8b", "first_node": 1}]})");
  const ModelSpec target = model("llama-3-70b"), draft = model("llama-3-8b");
  const RequestSet few = requests(0.5, 10, 500);
  const ServeSummary sa = summarise(ServeSimulator(target, spec, c, cost, &draft).run(few), {});
  const ServeSummary sb =
      summarise(ServeSimulator(target, spec, c, cost, &draft, ServeNetworkMode::kFlows).run(few), {});
  EXPECT_LT(relative(sb.tpot.p50, sa.tpot.p50), 0.02);
}

}  // namespace
}  // namespace clustersim::sim
