#pragma once
// NCCL collectives across the GPUs of this process (nccl-tests' -g mode), algorithm and
// protocol pinned per run through NCCL_ALGO / NCCL_PROTO before communicator init. all_to_all
// is grouped ncclSend/ncclRecv; send_recv is a ring shift (rank r sends to r + 1). Sizes are
// nccl-tests' "size"; busbw is computed by the harness with models' bus_bandwidth_factor.
// Verified against collective_reference at a small size (fp32, small integers: exact sums).
// CUDA-free header.
#include <cstdint>
#include <string>

#include "kernels/collective_reference.hpp"
#include "kernels/kernel_run.hpp"

namespace clustersim::kernels {

struct CollectiveConfig {
  CollectiveOp op = CollectiveOp::kAllReduce;
  int ranks = 2;
  std::int64_t size_bytes = 0;  // bf16 elements x 2
  std::string algorithm = "any";
  std::string protocol = "any";
  int max_ctas = 0;  // ncclConfig_t.maxCTAs; 0 = NCCL's choice
};

KernelRun run_nccl_collective(const CollectiveConfig& config, const TimingOptions& options);

// "2.28.3" from ncclGetVersion.
std::string nccl_version_string();

}  // namespace clustersim::kernels
