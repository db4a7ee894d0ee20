#include "kernels/memory_copy.hpp"

#include <cuda_runtime_api.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda_timing.hpp"

namespace clustersim::kernels {

namespace {

constexpr int kThreads = 256;

// 16-byte vectors; the grid covers the device a few times over and strides through the rest.
__global__ void copy_kernel(const int4* __restrict__ src, int4* __restrict__ dst, std::uint64_t count) {
  const std::uint64_t stride = static_cast<std::uint64_t>(blockDim.x) * gridDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    dst[i] = src[i];
  }
}

unsigned blocks_for(int device, std::uint64_t vectors) {
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const std::uint64_t wanted = (vectors + kThreads - 1) / kThreads;
  const std::uint64_t most = static_cast<std::uint64_t>(sms) * 8;
  return static_cast<unsigned>(wanted < most ? (wanted > 0 ? wanted : 1) : most);
}

void enqueue_copy(const void* src, void* dst, std::uint64_t vectors, unsigned blocks, cudaStream_t stream) {
  copy_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const int4*>(src), static_cast<int4*>(dst), vectors);
  CUDA_CHECK(cudaGetLastError());
}

// Copies an odd number of vectors (a partial last wave) and compares every byte.
double verify_copy(int device, cudaStream_t stream) {
  constexpr std::uint64_t kVectors = 1027;
  std::vector<unsigned char> host(kVectors * sizeof(int4));
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<unsigned char>((i * 131 + 7) % 251);
  const detail::DeviceMemory src = detail::device_malloc(host.size());
  const detail::DeviceMemory dst = detail::device_malloc(host.size());
  CUDA_CHECK(cudaMemcpy(src.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemset(dst.get(), 0, host.size()));
  enqueue_copy(src.get(), dst.get(), kVectors, blocks_for(device, kVectors), stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<unsigned char> back(host.size());
  CUDA_CHECK(cudaMemcpy(back.data(), dst.get(), back.size(), cudaMemcpyDeviceToHost));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < host.size(); ++i) wrong += back[i] != host[i] ? 1 : 0;
  return static_cast<double>(wrong) / static_cast<double>(host.size());
}

}  // namespace

KernelRun run_memory_copy(const MemoryCopyConfig& c, const TimingOptions& options) {
  if (c.bytes <= 0 || c.bytes % (2 * static_cast<std::int64_t>(sizeof(int4))) != 0) {
    throw std::invalid_argument("memory copy: bytes must be a positive multiple of 32, not " +
                                std::to_string(c.bytes));
  }
  CUDA_CHECK(cudaSetDevice(options.first_device));
  KernelRun run;
  run.operation = "memory/copy";
  const detail::OwnedStream stream = detail::make_stream();
  if (options.verify) {
    run.verification_error = verify_copy(options.first_device, stream.get());
    if (run.verification_error > 0) {
      throw std::runtime_error("memory copy differs from its input in " + std::to_string(run.verification_error) +
                               " of the bytes: not timing it");
    }
  }
  const std::uint64_t vectors = static_cast<std::uint64_t>(c.bytes) / 2 / sizeof(int4);
  const detail::DeviceMemory src = detail::device_malloc(vectors * sizeof(int4));
  const detail::DeviceMemory dst = detail::device_malloc(vectors * sizeof(int4));
  CUDA_CHECK(cudaMemsetAsync(src.get(), 1, vectors * sizeof(int4), stream.get()));
  const unsigned blocks = blocks_for(options.first_device, vectors);
  run.samples_s = detail::time_iterations(stream.get(), options.first_device, options, [&](int) {
    enqueue_copy(src.get(), dst.get(), vectors, blocks, stream.get());
  }, run);
  run.attributes["bytes"] = static_cast<double>(2 * vectors * sizeof(int4));
  return run;
}

}  // namespace clustersim::kernels
