#include "kernels/cuda_timing.hpp"

#include <cuda_bf16.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "kernels/cupti_timer.hpp"

namespace clustersim::kernels::detail {

namespace {

constexpr int kFillThreads = 256;
constexpr unsigned kFillMaxBlocks = 4096;

__host__ __device__ inline float fill_value(std::uint64_t index, std::uint64_t seed) {
  std::uint64_t x = index * 0x9E3779B97F4A7C15ULL + seed * 0xD1B54A32D192ED03ULL + 1;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  // Multiples of 1/64 in [-1, 1): exact in bf16, so the CPU reference sees the same values.
  return static_cast<float>(static_cast<int>(x % 128U) - 64) / 64.0f;
}

__global__ void fill_bf16_kernel(__nv_bfloat16* out, std::uint64_t count, std::uint64_t seed) {
  const std::uint64_t stride = static_cast<std::uint64_t>(blockDim.x) * gridDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = __float2bfloat16_rn(fill_value(i, seed));
  }
}

float bf16_bits_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

std::uint16_t float_to_bf16_bits(float value) {  // round to nearest even (finite inputs)
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

}  // namespace

DeviceMemory device_malloc(std::size_t bytes) {
  void* ptr = nullptr;
  CUDA_CHECK(cudaMalloc(&ptr, std::max<std::size_t>(bytes, 1)));
  return DeviceMemory(ptr);
}

OwnedStream make_stream(int priority) {
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  return OwnedStream(s);
}

OwnedStream make_high_priority_stream() {
  int least = 0;
  int greatest = 0;
  CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  return make_stream(greatest);
}

OwnedEvent make_event(bool timing) {
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return OwnedEvent(e);
}

L2Flusher::L2Flusher(int device) {
  int l2 = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  bytes_ = 2 * static_cast<std::size_t>(std::max(l2, 1 << 20));
  buffer_ = device_malloc(bytes_);
}

void L2Flusher::flush(cudaStream_t stream) const {
  CUDA_CHECK(cudaMemsetAsync(buffer_.get(), 0, bytes_, stream));
}

std::vector<double> time_iterations(cudaStream_t stream, int device, const TimingOptions& options,
                                    const std::function<void(int)>& enqueue, KernelRun& run) {
  if (options.iterations < 1 || options.warmup_iterations < 0) {
    throw std::invalid_argument("time_iterations: need iterations >= 1 and warmup >= 0");
  }
  std::unique_ptr<L2Flusher> flusher;
  if (options.flush_l2) flusher = std::make_unique<L2Flusher>(device);
  run.l2 = options.flush_l2 ? "flush" : "none";
  for (int i = 0; i < options.warmup_iterations; ++i) enqueue(-1 - i);
  CUDA_CHECK(cudaDeviceSynchronize());

  std::unique_ptr<CuptiSession> cupti = options.prefer_cupti ? CuptiSession::try_start() : nullptr;
  std::vector<OwnedEvent> starts, stops;
  for (int i = 0; i < options.iterations; ++i) {
    starts.push_back(make_event());
    stops.push_back(make_event());
  }
  for (int i = 0; i < options.iterations; ++i) {
    if (flusher) flusher->flush(stream);
    CUDA_CHECK(cudaEventRecord(starts[static_cast<std::size_t>(i)].get(), stream));
    if (cupti) cupti->begin(static_cast<std::uint64_t>(i));
    enqueue(i);
    if (cupti) cupti->end();
    CUDA_CHECK(cudaEventRecord(stops[static_cast<std::size_t>(i)].get(), stream));
  }
  CUDA_CHECK(cudaDeviceSynchronize());

  std::vector<double> samples;
  if (cupti) {
    const std::map<std::uint64_t, double> spans = cupti->finish();
    if (spans.size() == static_cast<std::size_t>(options.iterations)) {
      for (const auto& [id, seconds] : spans) samples.push_back(seconds);
      run.timer = "cupti";
      return samples;
    }
    // An iteration without a kernel of its own (e.g. only host work): use the events.
  }
  for (int i = 0; i < options.iterations; ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, starts[static_cast<std::size_t>(i)].get(),
                                    stops[static_cast<std::size_t>(i)].get()));
    samples.push_back(static_cast<double>(ms) * 1e-3);
  }
  run.timer = "cuda_event";
  return samples;
}

void fill_bf16(void* data, std::int64_t count, std::uint64_t seed, cudaStream_t stream) {
  if (count <= 0) return;
  const auto blocks = static_cast<unsigned>(
      std::min<std::int64_t>((count + kFillThreads - 1) / kFillThreads, kFillMaxBlocks));
  fill_bf16_kernel<<<blocks, kFillThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(data),
                                                         static_cast<std::uint64_t>(count), seed);
  CUDA_CHECK(cudaGetLastError());
}

std::vector<float> bf16_fill_values(std::int64_t count, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    v[static_cast<std::size_t>(i)] = fill_value(static_cast<std::uint64_t>(i), seed);
  }
  return v;
}

std::vector<float> download_bf16(const void* data, std::int64_t count) {
  std::vector<std::uint16_t> bits(static_cast<std::size_t>(count));
  CUDA_CHECK(cudaMemcpy(bits.data(), data, bits.size() * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) out[i] = bf16_bits_to_float(bits[i]);
  return out;
}

void upload_bf16(void* data, const std::vector<float>& values) {
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bits[i] = float_to_bf16_bits(values[i]);
  CUDA_CHECK(cudaMemcpy(data, bits.data(), bits.size() * sizeof(std::uint16_t), cudaMemcpyHostToDevice));
}

}  // namespace clustersim::kernels::detail
