// The CUDA backend's overlap, MoE, attention and memory-copy operations at small shapes: each verifies
// itself against its CPU reference (it throws when it disagrees) and takes one timed sample.
// CUDA builds only; skipped without a GPU (overlap and MoE: without two).
#include <gtest/gtest.h>

#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA
#include <cstdint>
#include <string>

#include "kernels/attention.hpp"
#include "kernels/cuda_device.hpp"
#include "kernels/memory_copy.hpp"
#include "kernels/moe_layer.hpp"
#include "kernels/tp_overlap.hpp"

namespace clustersim::kernels {
namespace {

TimingOptions one_sample() {
  TimingOptions o;
  o.warmup_iterations = 1;
  o.iterations = 1;
  o.flush_l2 = false;
  o.verify = true;
  return o;
}

// GTEST_SKIP only returns from the function it is in: a macro, so it leaves the test.
#define CLUSTERSIM_NEED_GPUS(gpus)                                                              \
  if (cuda_device_count() < (gpus))                                                             \
  GTEST_SKIP() << "needs " << (gpus) << " CUDA device(s): " << cuda_device_status()

TEST(GpuOperations, AttentionForwardBackwardDecodeMatchReference) {
  CLUSTERSIM_NEED_GPUS(1);
  for (const char* pass : {"forward", "backward", "decode"}) {
    for (bool causal : {true, false}) {
      AttentionConfig c;
      c.pass = pass;
      c.batch = 2;
      c.heads = 4;
      c.kv_heads = 2;
      c.head_dim = 64;
      c.seq_q = std::string(pass) == "decode" ? 1 : 65;
      c.seq_kv = 130;
      c.causal = causal && std::string(pass) != "decode";
      c.page_size = 16;
      c.num_splits = 3;
      SCOPED_TRACE(std::string(pass) + (c.causal ? " causal" : ""));
      const KernelRun run = run_attention(c, one_sample());
      EXPECT_GE(run.verification_error, 0);
      EXPECT_EQ(run.samples_s.size(), 1u);
    }
  }
}

TEST(GpuOperations, MemoryCopyReproducesItsInput) {
  CLUSTERSIM_NEED_GPUS(1);
  const KernelRun run = run_memory_copy({std::int64_t{1} << 21}, one_sample());
  EXPECT_EQ(run.verification_error, 0);
  EXPECT_EQ(run.samples_s.size(), 1u);
  EXPECT_EQ(run.attributes.at("bytes"), static_cast<double>(std::int64_t{1} << 21));
}

TEST(GpuOperations, TensorParallelOverlapMatchesReference) {
  CLUSTERSIM_NEED_GPUS(2);
  for (bool ag : {true, false}) {
    for (const char* variant : {"decomposed", "fused_ce"}) {
      const OverlapConfig c{ag, variant, 1024, 512, 512, 2, 4, 0};
      SCOPED_TRACE(std::string(ag ? "ag_gemm " : "gemm_rs ") + variant);
      const KernelRun run = run_tp_overlap(c, one_sample());
      EXPECT_GE(run.verification_error, 0);
      EXPECT_GT(run.attributes.at("sequential_s"), 0);
    }
  }
}

TEST(GpuOperations, MoeLayerMatchesReference) {
  CLUSTERSIM_NEED_GPUS(2);
  MoeLayerConfig c;
  c.ranks = 2;
  c.hidden = 128;
  c.ffn = 64;
  c.routing.tokens = 64;
  c.routing.topk = 2;
  c.routing.num_experts = 8;
  for (std::int64_t t = 0; t < c.routing.tokens; ++t) {
    c.routing.experts.push_back(static_cast<std::int32_t>(t % 8));
    c.routing.experts.push_back(static_cast<std::int32_t>((t + 3) % 8));
    c.routing.weights.push_back(0.75f);
    c.routing.weights.push_back(0.25f);
  }
  const MoeLayerRun run = run_moe_layer(c, one_sample());
  EXPECT_GE(run.dispatch.verification_error, 0);
  EXPECT_EQ(run.dispatch.tokens_per_expert.size(), 8u);
  EXPECT_GT(run.combine.attributes.at("bytes_per_rank"), 0);
}

}  // namespace
}  // namespace clustersim::kernels
#endif
