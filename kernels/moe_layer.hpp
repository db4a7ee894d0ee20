#pragma once
// An expert-parallel MoE layer across the GPUs of this process (one NCCL communicator each),
// the numerics of moe_reference.hpp, in three timed phases:
//   dispatch: pack each rank's token rows by expert (gather kernel), exchange per-peer row
//             counts (grouped ncclSend/ncclRecv of int64, read back on the host as a real layer
//             must before posting the payload), exchange the rows (grouped ncclSend/ncclRecv,
//             all-to-all-v), and permute the received rows to expert-major order;
//   expert GEMM: one cuBLASLt GEMM per local expert with tokens (x_e W_e, bf16, fp32 accumulate);
//   combine: un-permute, send the rows back (all-to-all-v) and sum each token's choices with
//             its routing weights (fp32 output).
// Experts live on rank e / (E / ranks); rank r holds tokens [r T, (r + 1) T). No Comet-style
// overlap of the phases yet. CUDA-free header; implementation moe_layer.cu.
#include <cstdint>

#include "kernels/kernel_run.hpp"
#include "kernels/moe_reference.hpp"

namespace clustersim::kernels {

struct MoeLayerConfig {
  int ranks = 2;
  std::int64_t hidden = 0;
  std::int64_t ffn = 0;
  MoeRouting routing;  // tokens divisible by ranks, experts by ranks
};

struct MoeLayerRun {
  // operation "moe/dispatch", "moe/expert_gemm", "moe/combine"; every one carries
  // tokens_per_expert and the attribute bytes_per_rank (the busiest rank's sent bytes).
  KernelRun dispatch, expert_gemm, combine;
};

// Verifies the layer at a small synthetic routing against moe_layer_reference first (when
// options.verify). Throws std::invalid_argument on sizes that do not divide, std::runtime_error
// when GPUs are missing or the check fails.
MoeLayerRun run_moe_layer(const MoeLayerConfig& config, const TimingOptions& options);

}  // namespace clustersim::kernels
