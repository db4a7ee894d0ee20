#pragma once
// Tensor-parallel AG+GEMM and GEMM+RS across the GPUs of this process, chunked and overlapped
// on two streams per rank (communication on a high-priority stream, GEMMs on another; an event
// per chunk hands it over), timed four ways: GEMM alone, communication alone, sequential and
// overlapped (the samples). CUDA-free header; implementation tp_overlap.cu.
//
// Variants:
//   "decomposed": NCCL all-gather / reduce-scatter per step (ncclConfig_t.maxCTAs pinned when
//                 max_ctas > 0; the SMs NCCL takes are then at most max_ctas).
//   "fused_ce":   FLUX-style over copy engines: each rank pulls its peers' chunks with
//                 cudaMemcpyPeerAsync (RS: then sums them with a small kernel); no SM spins on a
//                 flag, so no deadlock when GEMMs fill every SM.
//
// Layout (token rows contiguous, as in the CPU backend): m rows in C chunks of m / C rows,
// C = ranks x steps. Step s handles chunk r x steps + s of every rank r; the rows of step s are
// stored together ([step][rank][rows of a chunk]), so one collective and one GEMM cover a step.
//   AG+GEMM: rank r holds A_r [m / R, k] and W_r [n / R, k]; out_r [m, n / R] = A W_r^T.
//   GEMM+RS: rank r holds A_r [m, k / R] and W_r [n, k / R]; out_r = rows of rank r's chunks of
//            sum_q A_q W_q^T, [m / R, n].
// The GEMM is LtMatmul with shape (n', rows, k') so that D, column-major n' x rows, is the
// row-major [rows, n'] a chunk needs contiguous. bf16 operands, fp32 accumulation.
#include <cstdint>
#include <string>

#include "kernels/kernel_run.hpp"

namespace clustersim::kernels {

struct OverlapConfig {
  bool all_gather_gemm = true;  // false: GEMM + reduce-scatter
  std::string variant = "decomposed";
  std::int64_t m = 0, n = 0, k = 0;  // the full layer GEMM (n for AG and k for RS split by ranks)
  int ranks = 2;
  int chunks = 2;    // a multiple of ranks dividing m
  int max_ctas = 0;  // NCCL maxCTAs for "decomposed" (0: NCCL's choice)
};

// samples_s: overlapped iterations. attributes: gemm_alone_s, comm_alone_s, sequential_s
// (medians), comm_sms (max_ctas for NCCL, -1 when NCCL chose; 0 for copy engines; plus the
// reduce kernel's blocks for fused_ce RS), chunks, steps. Throws std::invalid_argument on a
// shape that does not divide, std::runtime_error when fewer GPUs exist or the check fails.
KernelRun run_tp_overlap(const OverlapConfig& config, const TimingOptions& options);

}  // namespace clustersim::kernels
