#pragma once
// The uniform interface of the CUDA backend's operations (one file per operation: gemm_run,
// nccl_collective, tp_overlap, moe_layer, flash_attention, paged_decode). Each takes its
// configuration and TimingOptions and returns a KernelRun. CUDA-free, so the calibration
// harness includes it whether or not the toolkit is present.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clustersim::kernels {

struct TimingOptions {
  int warmup_iterations = 10;
  int iterations = 50;
  // Before every timed iteration, write a buffer twice the L2 size (not timed), so no iteration
  // finds its operands in L2 (DeepEP and Triton-distributed flush 256 MB; CUTLASS rotates).
  bool flush_l2 = true;
  // CUPTI activity records (CONCURRENT_KERNEL + MEMCPY) when CUPTI can be subscribed; CUDA
  // events around each iteration otherwise. A run whose CUPTI buffers dropped records fails.
  bool prefer_cupti = true;
  // Check the result against the CPU reference at a small shape before timing.
  bool verify = true;
  int first_device = 0;
};

struct KernelRun {
  std::string operation;          // "gemm", "all_reduce", "ag_gemm/decomposed", "moe/dispatch", ...
  std::vector<double> samples_s;  // every timed iteration, in order
  std::string timer;              // "cupti" or "cuda_event"
  std::string l2;                 // "flush", "rotate" or "none"
  // Largest relative error against the CPU reference at the verification shape; -1 when the
  // operation was not verified. The harness refuses to time an operation that fails it.
  double verification_error = -1;
  // Operation-specific facts, SI units in the key: "tile_id", "split_k", "comm_sms",
  // "gemm_alone_s", "comm_alone_s", "sequential_s", "bytes_per_rank", ...
  std::map<std::string, double> attributes;
  std::vector<std::int64_t> tokens_per_expert;  // MoE only
};

}  // namespace clustersim::kernels
