#pragma once
// What each rank holds after a collective, computed serially: the reference NCCL runs
// (nccl_collective.cu) and the CPU thread collectives are checked against. CUDA-free.
#include <cstdint>
#include <vector>

namespace clustersim::kernels {

// The collectives the harness times (nccl-tests' set, all-to-all as grouped send/recv).
enum class CollectiveOp { kAllReduce, kAllGather, kReduceScatter, kAllToAll, kSendRecv };
const char* to_string(CollectiveOp op);  // "all_reduce", ... (the records' op names)

// inputs[r] is rank r's send buffer. Sizes (nccl-tests' conventions; R ranks, n elements each):
//   all_reduce: n -> n (sum)           all_gather: n -> R n (rank order)
//   reduce_scatter: R n -> n (sum of block r)   all_to_all: R b -> R b (block j goes to rank j)
//   send_recv: n -> n, rank r receives rank (r - 1 + R) % R's buffer (a ring shift)
// Sums are in double, then rounded to float. Throws std::invalid_argument when ranks disagree
// on sizes or a size does not divide by R where it must.
std::vector<std::vector<float>> collective_reference(CollectiveOp op,
                                                     const std::vector<std::vector<float>>& inputs);

}  // namespace clustersim::kernels
