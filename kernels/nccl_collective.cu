#include "kernels/nccl_collective.hpp"

#include <cmath>
#include <stdexcept>

#include "kernels/nccl_group.hpp"

namespace clustersim::kernels {

namespace {

using detail::DeviceMemory;
using detail::NcclGroup;

// Per-rank element counts of the send and receive buffers for `elements` = size / dtype bytes.
struct Counts {
  std::size_t send = 0, recv = 0;
};

Counts counts_of(CollectiveOp op, std::size_t elements, std::size_t ranks) {
  switch (op) {
    case CollectiveOp::kAllGather: return {elements / ranks, elements};
    case CollectiveOp::kReduceScatter: return {elements, elements / ranks};
    case CollectiveOp::kAllReduce:
    case CollectiveOp::kAllToAll:
    case CollectiveOp::kSendRecv: return {elements, elements};
  }
  return {elements, elements};
}

// Enqueues one collective on every rank's stream (one NCCL group), between fork and join.
void enqueue(NcclGroup& g, CollectiveOp op, const std::vector<DeviceMemory>& send,
             const std::vector<DeviceMemory>& recv, Counts counts, ncclDataType_t type,
             std::size_t element_bytes) {
  const int ranks = g.ranks();
  g.fork_from_rank0();
  NCCL_CHECK(ncclGroupStart());
  for (int r = 0; r < ranks; ++r) {
    const auto i = static_cast<std::size_t>(r);
    const void* s = send[i].get();
    void* d = recv[i].get();
    switch (op) {
      case CollectiveOp::kAllReduce:
        NCCL_CHECK(ncclAllReduce(s, d, counts.send, type, ncclSum, g.comm(r), g.stream(r)));
        break;
      case CollectiveOp::kAllGather:
        NCCL_CHECK(ncclAllGather(s, d, counts.send, type, g.comm(r), g.stream(r)));
        break;
      case CollectiveOp::kReduceScatter:
        NCCL_CHECK(ncclReduceScatter(s, d, counts.recv, type, ncclSum, g.comm(r), g.stream(r)));
        break;
      case CollectiveOp::kAllToAll: {
        const std::size_t block = counts.send / static_cast<std::size_t>(ranks);
        for (int peer = 0; peer < ranks; ++peer) {
          const std::size_t offset = static_cast<std::size_t>(peer) * block * element_bytes;
          NCCL_CHECK(ncclSend(static_cast<const char*>(s) + offset, block, type, peer, g.comm(r), g.stream(r)));
          NCCL_CHECK(ncclRecv(static_cast<char*>(d) + offset, block, type, peer, g.comm(r), g.stream(r)));
        }
        break;
      }
      case CollectiveOp::kSendRecv:
        NCCL_CHECK(ncclSend(s, counts.send, type, (r + 1) % ranks, g.comm(r), g.stream(r)));
        NCCL_CHECK(ncclRecv(d, counts.recv, type, (r + ranks - 1) % ranks, g.comm(r), g.stream(r)));
        break;
    }
  }
  NCCL_CHECK(ncclGroupEnd());
  g.join_into_rank0();
}

std::vector<DeviceMemory> alloc_per_rank(NcclGroup& g, std::size_t bytes) {
  std::vector<DeviceMemory> out;
  for (int r = 0; r < g.ranks(); ++r) {
    CUDA_CHECK(cudaSetDevice(g.device(r)));
    out.push_back(detail::device_malloc(bytes));
  }
  CUDA_CHECK(cudaSetDevice(g.device(0)));
  return out;
}

// fp32 small integers: every sum is exact, so the check is equality.
double verify(NcclGroup& g, CollectiveOp op) {
  const auto ranks = static_cast<std::size_t>(g.ranks());
  const std::size_t elements = 64 * ranks;
  const Counts counts = counts_of(op, elements, ranks);
  std::vector<std::vector<float>> inputs(ranks);
  std::vector<DeviceMemory> send = alloc_per_rank(g, counts.send * sizeof(float));
  std::vector<DeviceMemory> recv = alloc_per_rank(g, counts.recv * sizeof(float));
  for (std::size_t r = 0; r < ranks; ++r) {
    for (std::size_t i = 0; i < counts.send; ++i) {
      inputs[r].push_back(static_cast<float>((r + 1) * 10 + i % 7));
    }
    CUDA_CHECK(cudaSetDevice(g.device(static_cast<int>(r))));
    CUDA_CHECK(cudaMemcpy(send[r].get(), inputs[r].data(), counts.send * sizeof(float), cudaMemcpyHostToDevice));
  }
  enqueue(g, op, send, recv, counts, ncclFloat32, sizeof(float));
  CUDA_CHECK(cudaStreamSynchronize(g.stream(0)));
  const auto expected = collective_reference(op, inputs);
  double worst = 0;
  for (std::size_t r = 0; r < ranks; ++r) {
    std::vector<float> got(counts.recv);
    CUDA_CHECK(cudaSetDevice(g.device(static_cast<int>(r))));
    CUDA_CHECK(cudaMemcpy(got.data(), recv[r].get(), got.size() * sizeof(float), cudaMemcpyDeviceToHost));
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(got[i]) - expected[r][i]) /
                                  std::max(1.0, std::abs(static_cast<double>(expected[r][i]))));
    }
  }
  CUDA_CHECK(cudaSetDevice(g.device(0)));
  return worst;
}

}  // namespace

std::string nccl_version_string() {
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess) return "unknown";
  // NCCL_VERSION(X,Y,Z) = X*10000 + Y*100 + Z since 2.9.
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100);
}

KernelRun run_nccl_collective(const CollectiveConfig& c, const TimingOptions& options) {
  const auto ranks = static_cast<std::size_t>(c.ranks);
  constexpr std::size_t kBf16Bytes = 2;
  const std::size_t elements = static_cast<std::size_t>(c.size_bytes) / kBf16Bytes;
  if (c.ranks < 2 || elements == 0 || elements % ranks != 0) {
    throw std::invalid_argument("NCCL collective: need >= 2 ranks and a size divisible by 2 x ranks");
  }
  KernelRun run;
  run.operation = to_string(c.op);
  NcclGroup group(c.ranks, options.first_device, {c.algorithm, c.protocol, c.max_ctas, 0});
  if (options.verify) {
    run.verification_error = verify(group, c.op);
    if (run.verification_error != 0) {
      throw std::runtime_error(std::string(to_string(c.op)) + " differs from the CPU reference");
    }
  }
  const Counts counts = counts_of(c.op, elements, ranks);
  const std::vector<DeviceMemory> send = alloc_per_rank(group, counts.send * kBf16Bytes);
  const std::vector<DeviceMemory> recv = alloc_per_rank(group, counts.recv * kBf16Bytes);
  for (std::size_t r = 0; r < ranks; ++r) {
    CUDA_CHECK(cudaSetDevice(group.device(static_cast<int>(r))));
    detail::fill_bf16(send[r].get(), static_cast<std::int64_t>(counts.send), r, group.stream(static_cast<int>(r)));
  }
  CUDA_CHECK(cudaSetDevice(group.device(0)));
  run.samples_s = detail::time_iterations(
      group.stream(0), group.device(0), options,
      [&](int) { enqueue(group, c.op, send, recv, counts, ncclBfloat16, kBf16Bytes); }, run);
  run.attributes["max_ctas"] = c.max_ctas;
  return run;
}

}  // namespace clustersim::kernels
