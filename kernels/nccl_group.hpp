#pragma once
// One process driving `ranks` GPUs (first_device, first_device + 1, ...) with one NCCL
// communicator each, as nccl-tests' -g mode does. kernels/ only (NCCL and CUDA headers).
#include <nccl.h>

#include <string>
#include <vector>

#include "kernels/cuda_timing.hpp"

#define NCCL_CHECK(call)                                                                     \
  do {                                                                                       \
    const ncclResult_t clustersim_nccl_status_ = (call);                                     \
    if (clustersim_nccl_status_ != ncclSuccess) {                                            \
      throw std::runtime_error(::clustersim::kernels::detail::cuda_error_context(            \
                                   #call, __FILE__, __LINE__) +                              \
                               ncclGetErrorString(clustersim_nccl_status_));                 \
    }                                                                                        \
  } while (0)

namespace clustersim::kernels::detail {

struct NcclPins {
  std::string algorithm = "any";  // NCCL_ALGO for this run ("any": unset)
  std::string protocol = "any";   // NCCL_PROTO
  int max_ctas = 0;               // ncclConfig_t.maxCTAs (0: NCCL's choice)
  int cga_cluster_size = 0;       // ncclConfig_t.cgaClusterSize (0: NCCL's choice)
};

class NcclGroup {
 public:
  // Sets (or unsets) NCCL_ALGO / NCCL_PROTO before creating the communicators: NCCL reads them
  // at init, so each pinned run gets communicators of its own.
  NcclGroup(int ranks, int first_device, const NcclPins& pins);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int ranks() const { return static_cast<int>(comms_.size()); }
  int device(int rank) const { return first_device_ + rank; }
  ncclComm_t comm(int rank) const { return comms_[static_cast<std::size_t>(rank)]; }
  cudaStream_t stream(int rank) const { return streams_[static_cast<std::size_t>(rank)].get(); }
  // Makes every rank's stream wait for rank 0's stream, and rank 0's wait for all: the fork
  // and join that let one iteration start and end on rank 0's stream.
  void fork_from_rank0();
  void join_into_rank0();

 private:
  int first_device_;
  std::vector<ncclComm_t> comms_;
  std::vector<OwnedStream> streams_;
  std::vector<OwnedEvent> events_;
};

// Throws std::runtime_error unless `ranks` devices from first_device exist.
void require_devices(int ranks, int first_device);

}  // namespace clustersim::kernels::detail
