#include "kernels/nccl_group.hpp"

#include <cstdlib>
#include <stdexcept>

namespace clustersim::kernels::detail {

namespace {

void pin_env(const char* name, const std::string& value) {
  if (value.empty() || value == "any") {
    (void)unsetenv(name);
  } else {
    (void)setenv(name, value.c_str(), 1);
  }
}

}  // namespace

void require_devices(int ranks, int first_device) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (ranks < 1 || first_device < 0 || first_device + ranks > count) {
    throw std::runtime_error("need " + std::to_string(ranks) + " GPUs from device " +
                             std::to_string(first_device) + ", this process sees " +
                             std::to_string(count));
  }
}

NcclGroup::NcclGroup(int ranks, int first_device, const NcclPins& pins) : first_device_(first_device) {
  require_devices(ranks, first_device);
  pin_env("NCCL_ALGO", pins.algorithm);
  pin_env("NCCL_PROTO", pins.protocol);
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  comms_.assign(static_cast<std::size_t>(ranks), nullptr);
  NCCL_CHECK(ncclGroupStart());
  for (int r = 0; r < ranks; ++r) {
    CUDA_CHECK(cudaSetDevice(device(r)));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    if (pins.max_ctas > 0) config.maxCTAs = pins.max_ctas;
    if (pins.cga_cluster_size > 0) config.cgaClusterSize = pins.cga_cluster_size;
    NCCL_CHECK(ncclCommInitRankConfig(&comms_[static_cast<std::size_t>(r)], ranks, id, r, &config));
  }
  NCCL_CHECK(ncclGroupEnd());
  for (int r = 0; r < ranks; ++r) {
    CUDA_CHECK(cudaSetDevice(device(r)));
    streams_.push_back(make_stream());
    events_.push_back(make_event(false));
  }
  CUDA_CHECK(cudaSetDevice(first_device));
}

NcclGroup::~NcclGroup() {
  for (std::size_t r = 0; r < comms_.size(); ++r) {
    if (comms_[r] != nullptr) {
      (void)cudaSetDevice(first_device_ + static_cast<int>(r));
      (void)cudaStreamSynchronize(streams_.size() > r ? streams_[r].get() : nullptr);
      (void)ncclCommDestroy(comms_[r]);
    }
  }
  (void)cudaSetDevice(first_device_);
}

void NcclGroup::fork_from_rank0() {
  CUDA_CHECK(cudaSetDevice(device(0)));
  CUDA_CHECK(cudaEventRecord(events_[0].get(), stream(0)));
  for (int r = 1; r < ranks(); ++r) {
    CUDA_CHECK(cudaSetDevice(device(r)));
    CUDA_CHECK(cudaStreamWaitEvent(stream(r), events_[0].get(), 0));
  }
  CUDA_CHECK(cudaSetDevice(device(0)));
}

void NcclGroup::join_into_rank0() {
  for (int r = 1; r < ranks(); ++r) {
    CUDA_CHECK(cudaSetDevice(device(r)));
    CUDA_CHECK(cudaEventRecord(events_[static_cast<std::size_t>(r)].get(), stream(r)));
  }
  CUDA_CHECK(cudaSetDevice(device(0)));
  for (int r = 1; r < ranks(); ++r) {
    CUDA_CHECK(cudaStreamWaitEvent(stream(0), events_[static_cast<std::size_t>(r)].get(), 0));
  }
}

}  // namespace clustersim::kernels::detail
