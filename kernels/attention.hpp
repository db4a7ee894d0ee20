#pragma once
// Attention on one GPU as KernelRuns: an FA2-style tiled forward (online softmax over key tiles
// in shared memory, causal bottom-right masks, GQA, variable lengths), a simple unfused backward
// (D = rowsum(dO * O), then dQ per query row and dK/dV per key row, P recomputed from the
// forward's lse), and decode over a paged KV cache with split-KV and a log-sum-exp combine.
// Numerics of attention_reference.hpp (layouts there), bf16 inputs, fp32 math and outputs.
//
// These kernels are a correctness and scaling probe, written for clarity: they are far from
// FlashAttention 2/3 speed (no tensor cores, no TMA/wgmma). Records they produce say
// implementation "clustersim_probe" so nobody mistakes them for FA3 figures. CUDA-free header;
// implementation attention.cu.
#include <cstdint>
#include <string>

#include "kernels/kernel_run.hpp"

namespace clustersim::kernels {

struct AttentionConfig {
  std::string pass = "forward";  // forward | backward | decode
  std::int64_t batch = 1, heads = 0, kv_heads = 0, head_dim = 0;
  std::int64_t seq_q = 0, seq_kv = 0;  // every sequence of the batch; decode: seq_q = 1
  bool causal = false;
  std::int64_t page_size = 0;   // decode
  std::int64_t num_splits = 1;  // decode
};

// head_dim must be a multiple of 32, at most 256. Throws std::invalid_argument otherwise and
// std::runtime_error when the small-shape check against the CPU reference fails.
KernelRun run_attention(const AttentionConfig& config, const TimingOptions& options);

}  // namespace clustersim::kernels
