#include "models/planning/moe_overlap_schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace clustersim {
namespace {

MoeLayerNodes forward_nodes() {
  MoeLayerNodes f;
  f.attention_s = 1.0;
  f.dispatch_comm_s = 1.5;
  f.experts_s = 1.2;
  f.combine_comm_s = 0.7;
  return f;
}

MoeLayerNodes backward_nodes() {
  MoeLayerNodes b;
  b.combine_comm_s = 1.4;
  b.experts_s = 1.1;
  b.experts_wgrad_s = 1.3;
  b.dispatch_comm_s = 0.9;
  b.attention_s = 1.6;
  b.attention_wgrad_s = 0.6;
  return b;
}

// Without delayed weight gradients, the issue order and the per-pass events split a layer pair
// into four phases, each as long as the longer of one compute and one communication node:
// max(attn_f, combine_b) + max(experts_b, dispatch_f) + max(dispatch_b, experts_f) +
// max(attn_b, combine_f); layers add up.
TEST(MoeOverlapSchedule, PairIsFourPhasesOfTheLongerNode) {
  CombinedChunk c;
  c.forward = forward_nodes();
  c.backward = backward_nodes();
  const MoeLayerNodes& f = c.forward;
  const MoeLayerNodes& b = c.backward;
  const double phases = std::max(f.attention_s, b.combine_comm_s) +
                        std::max(b.experts_s + b.experts_wgrad_s, f.dispatch_comm_s) +
                        std::max(b.dispatch_comm_s, f.experts_s) +
                        std::max(b.attention_s + b.attention_wgrad_s, f.combine_comm_s);
  EXPECT_NEAR(combined_chunk_s(c), phases, 1e-12);
  c.layers = 3;
  EXPECT_NEAR(combined_chunk_s(c), 3 * phases, 1e-12);
}

// Delayed weight gradients let the backward dispatch start after the experts' input gradient.
TEST(MoeOverlapSchedule, DelayedWeightGradientsStartTheBackwardDispatchEarlier) {
  CombinedChunk c;
  c.forward = forward_nodes();
  c.backward = backward_nodes();
  c.layers = 4;
  const double plain = combined_chunk_s(c);
  c.delay_wgrad_compute = true;
  const double delayed = combined_chunk_s(c);
  EXPECT_LT(delayed, plain);
  EXPECT_GE(delayed, 4 * (c.forward.total_s() + c.backward.total_s() - c.forward.comm_s() - c.backward.comm_s()));
}

// Compute beside an all-to-all holding c of S SMs runs at (S - c) / S: 1 s of attention beside
// a 2 s combine gradient finishes at 4/3 s, inside it; 3 s of attention finishes at 2 + (3 - 1.5).
TEST(MoeOverlapSchedule, AllToAllSmsSlowTheComputeBesideIt) {
  CombinedChunk c;
  c.forward.attention_s = 1.0;
  c.backward.combine_comm_s = 2.0;
  c.comm_sms = 33;
  c.sm_count = 132;
  EXPECT_NEAR(combined_chunk_s(c), 2.0, 1e-12);
  c.forward.attention_s = 3.0;
  EXPECT_NEAR(combined_chunk_s(c), 2.0 + (3.0 - 2.0 * 0.75), 1e-12);
  c.comm_sms = 0;
  EXPECT_NEAR(combined_chunk_s(c), 3.0, 1e-12);
}

// Two compute kernels side by side (the unpermutation on the communication stream) share the
// GPU: together they take their sum.
TEST(MoeOverlapSchedule, ComputeOnTheCommunicationStreamSharesTheGpu) {
  CombinedChunk c;
  c.forward.attention_s = 1.0;
  c.backward.combine_compute_s = 0.5;
  EXPECT_NEAR(combined_chunk_s(c), 1.5, 1e-12);
}

// Megatron-LM's warmup: one forward alone without pipelining; (pp - rank - 1) * 2 +
// (v - 1) * pp + 1 interleaved.
TEST(MoeOverlapSchedule, PairedShareCountsTheWarmupForwards) {
  EXPECT_DOUBLE_EQ(combined_paired_share(1, 0, 1, 64), 63.0 / 64.0);
  EXPECT_DOUBLE_EQ(combined_paired_share(2, 0, 12, 128), (1536.0 - 25.0) / 1536.0);
  EXPECT_DOUBLE_EQ(combined_paired_share(2, 1, 12, 128), (1536.0 - 23.0) / 1536.0);
  EXPECT_DOUBLE_EQ(combined_paired_share(4, 0, 2, 2), 0.0);
}

}  // namespace
}  // namespace clustersim
