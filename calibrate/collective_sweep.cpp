// Collective sweep: nccl-tests' size ramp (x2) for all-reduce, all-gather,
// reduce-scatter, all-to-all and send/recv, with NCCL_ALGO / NCCL_PROTO pinned per run on GPUs.
#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

std::vector<SweepCase> collective_sweep(const SweepOptions& o) {
  using kernels::CollectiveOp;
  std::vector<SweepCase> cases;
  const bool cpu = o.scale == SweepScale::kCpu;
  struct Pin {
    std::string algorithm, protocol;
  };
  std::vector<int> rank_counts = cpu ? std::vector<int>{2, 4} : std::vector<int>{o.gpus};
  const std::int64_t first = cpu ? 4096 : 1024;
  const std::int64_t last = cpu ? (8LL << 20) : (1LL << 30);
  const std::int64_t factor = 2;
  const std::vector<CollectiveOp> ops =
      cpu ? std::vector<CollectiveOp>{CollectiveOp::kAllReduce, CollectiveOp::kAllGather,
                                      CollectiveOp::kReduceScatter, CollectiveOp::kAllToAll}
          : std::vector<CollectiveOp>{CollectiveOp::kAllReduce, CollectiveOp::kAllGather,
                                      CollectiveOp::kReduceScatter, CollectiveOp::kAllToAll,
                                      CollectiveOp::kSendRecv};
  for (int ranks : rank_counts) {
    if (ranks < 2) continue;
    for (CollectiveOp op : ops) {
      std::vector<Pin> pins;
      if (cpu) {
        pins = {{"ring", "any"}};
      } else if (op == CollectiveOp::kAllToAll || op == CollectiveOp::kSendRecv) {
        pins = {{"any", "any"}};  // point-to-point: NCCL_ALGO does not apply
      } else {
        for (const char* proto : {"simple", "ll", "ll128"}) {
          pins.push_back({"ring", proto});
          if (op == CollectiveOp::kAllReduce) pins.push_back({"tree", proto});
        }
      }
      for (const Pin& pin : pins) {
        for (std::int64_t size = first; size <= last; size *= factor) {
          const std::string dtype = cpu ? "fp32" : "bf16";
          cases.push_back({Suite::kCollectives,
                           fmt::format("{} {}r {}/{} {}B {}", kernels::to_string(op), ranks,
                                       pin.algorithm, pin.protocol, size, dtype),
                           CollectiveCase{op, ranks, size, dtype, pin.algorithm, pin.protocol}});
        }
      }
    }
  }
  return cases;
}

}  // namespace clustersim::calibrate
