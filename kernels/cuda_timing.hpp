#pragma once
// Timing machinery shared by the CUDA operations (kernels/ only: includes CUDA headers).
// An iteration is whatever `enqueue(i)` puts on the GPU: it starts and ends on `stream` (other
// streams and devices fork from and join it with events). Per iteration, the sample is either
// CUPTI's span of every kernel and memcpy launched inside it (external correlation id = the
// iteration), or a CUDA event pair around it on `stream`.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/kernel_run.hpp"

namespace clustersim::kernels::detail {

struct CudaFreeDeleter {
  void operator()(void* ptr) const noexcept { (void)cudaFree(ptr); }
};
using DeviceMemory = std::unique_ptr<void, CudaFreeDeleter>;
DeviceMemory device_malloc(std::size_t bytes);

template <typename T>
T* typed(const DeviceMemory& memory) {
  return static_cast<T*>(memory.get());
}

struct StreamDeleter {
  void operator()(cudaStream_t s) const noexcept { (void)cudaStreamDestroy(s); }
};
using OwnedStream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
// priority: 0 = default; lower numbers are higher priority (cudaDeviceGetStreamPriorityRange).
OwnedStream make_stream(int priority = 0);
OwnedStream make_high_priority_stream();

struct EventDeleter {
  void operator()(cudaEvent_t e) const noexcept { (void)cudaEventDestroy(e); }
};
using OwnedEvent = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter>;
OwnedEvent make_event(bool timing = true);

// Writes a buffer twice the device's L2 size, so the next kernel finds nothing of its own there.
class L2Flusher {
 public:
  explicit L2Flusher(int device);
  void flush(cudaStream_t stream) const;

 private:
  DeviceMemory buffer_;
  std::size_t bytes_ = 0;
};

// Warm-up, then `options.iterations` timed iterations; returns one sample per iteration and sets
// run.timer and run.l2. Throws std::runtime_error when CUPTI dropped activity records.
std::vector<double> time_iterations(cudaStream_t stream, int device, const TimingOptions& options,
                                    const std::function<void(int iteration)>& enqueue,
                                    KernelRun& run);

// bf16 pseudo-random fill in [-1, 1] (deterministic per seed), on `stream`.
void fill_bf16(void* data, std::int64_t count, std::uint64_t seed, cudaStream_t stream);
// float copy of `count` bf16 values on the device (synchronous).
std::vector<float> download_bf16(const void* data, std::int64_t count);
// Host bf16 rounding of float, as fill_bf16's values are seen by the CPU reference.
std::vector<float> bf16_fill_values(std::int64_t count, std::uint64_t seed);
// Uploads floats as bf16 (synchronous).
void upload_bf16(void* data, const std::vector<float>& values);

}  // namespace clustersim::kernels::detail
