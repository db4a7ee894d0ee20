#include "kernels/cublaslt_gemm.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/gemm_reference.hpp"
#include "kernels/lt_matmul.hpp"

namespace clustersim::kernels {

namespace {

// cuBLASLt assumes 256-byte aligned A, B, C and D unless told otherwise; every buffer and every
// rotated copy starts on such a boundary.
constexpr std::int64_t kBufferAlignmentBytes = 256;
// Left free beside the buffers when sizing the rotation: cuBLASLt and CUDA context allocations.
constexpr std::int64_t kMemoryHeadroomBytes = 512LL << 20;
constexpr std::int64_t kVerifyMaxMultiplyAdds = 1LL << 28;
// pattern_value sums stay exact in fp32 while 16 k < 2^24; keep far below.
constexpr std::int64_t kVerifyMaxK = 1LL << 16;
constexpr int kFillThreadsPerBlock = 256;
constexpr std::int64_t kFillMaxBlocks = 4096;

// Seeds of the verification operands.
constexpr std::uint64_t kSeedA = 1;
constexpr std::uint64_t kSeedB = 2;
constexpr std::uint64_t kSeedC = 3;

std::int64_t round_up(std::int64_t value, std::int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// ---------------------------------------------------------------------------------------------
// Owning wrappers: every CUDA and cuBLASLt object is released on every path, exceptions included.

template <typename Handle, auto Destroy>
struct HandleDeleter {
  void operator()(Handle handle) const noexcept { (void)Destroy(handle); }
};
template <typename Handle, auto Destroy>
using Owned = std::unique_ptr<std::remove_pointer_t<Handle>, HandleDeleter<Handle, Destroy>>;

using LtHandle = Owned<cublasLtHandle_t, cublasLtDestroy>;
using MatmulDesc = Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using MatrixLayout = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using MatmulPreference = Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;
using Stream = Owned<cudaStream_t, cudaStreamDestroy>;
using Event = Owned<cudaEvent_t, cudaEventDestroy>;

struct CudaFree {
  void operator()(void* ptr) const noexcept { (void)cudaFree(ptr); }
};
using DeviceBuffer = std::unique_ptr<void, CudaFree>;

DeviceBuffer device_alloc(std::int64_t bytes) {
  void* ptr = nullptr;
  CUDA_CHECK(cudaMalloc(&ptr, static_cast<std::size_t>(bytes)));
  return DeviceBuffer(ptr);
}

std::byte* bytes_of(const DeviceBuffer& buffer) { return static_cast<std::byte*>(buffer.get()); }

LtHandle make_lt_handle() {
  cublasLtHandle_t raw = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&raw));
  return LtHandle(raw);
}

Stream make_stream() {
  cudaStream_t raw = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking));
  return Stream(raw);
}

Event make_event() {
  cudaEvent_t raw = nullptr;
  CUDA_CHECK(cudaEventCreate(&raw));
  return Event(raw);
}

MatrixLayout make_layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols,
                         std::int64_t ld) {
  cublasLtMatrixLayout_t raw = nullptr;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&raw, type, static_cast<std::uint64_t>(rows),
                                          static_cast<std::uint64_t>(cols), ld));
  return MatrixLayout(raw);
}

// Makes `device` current for the lifetime of the object and restores the caller's device after.
// Declared before any allocation, so it is destroyed after every buffer.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    CUDA_CHECK(cudaGetDevice(&previous_));
    CUDA_CHECK(cudaSetDevice(device));
  }
  ~ScopedDevice() { (void)cudaSetDevice(previous_); }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Data types and deterministic operands.

cudaDataType_t input_cuda_type(GemmDtype dtype) {
  switch (dtype) {
    case GemmDtype::kBf16:
      return CUDA_R_16BF;
    case GemmDtype::kFp16:
      return CUDA_R_16F;
    case GemmDtype::kFp8E4m3:
      return CUDA_R_8F_E4M3;
  }
  throw std::invalid_argument("unknown GemmDtype");
}

cudaDataType_t output_cuda_type(GemmDtype dtype) {
  return dtype == GemmDtype::kFp16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Pseudo-random value of element `index` of the operand seeded `seed`: a multiple of 0.5 in
// [-2, 2], exact in e4m3, fp16 and bf16. Products are multiples of 0.25 of magnitude <= 4, so sums
// of up to 2^20 of them are exact in fp32 whatever the summation order. (splitmix64 finaliser.)
__host__ __device__ inline float pattern_value(std::uint64_t index, std::uint64_t seed) {
  std::uint64_t x = index * 0x9E3779B97F4A7C15ULL + seed * 0xD1B54A32D192ED03ULL + 1;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return 0.5f * static_cast<float>(static_cast<int>(x % 9U) - 4);
}

template <typename T>
__device__ inline T from_float(float value) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(value);
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(value);
  } else {
    return T(value);  // __nv_fp8_e4m3: round to nearest, saturate to finite
  }
}

// out[i] = pattern_value(i, seed) for i < count, grid-stride.
template <typename T>
__global__ void fill_pattern_kernel(T* out, std::uint64_t count, std::uint64_t seed) {
  const std::uint64_t stride = static_cast<std::uint64_t>(blockDim.x) * gridDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride) {
    out[i] = from_float<T>(pattern_value(i, seed));
  }
}

template <typename T>
void launch_fill(void* out, std::int64_t count, std::uint64_t seed, cudaStream_t stream) {
  const std::int64_t blocks =
      std::clamp<std::int64_t>((count + kFillThreadsPerBlock - 1) / kFillThreadsPerBlock, 1,
                               kFillMaxBlocks);
  fill_pattern_kernel<T><<<static_cast<unsigned>(blocks), kFillThreadsPerBlock, 0, stream>>>(
      static_cast<T*>(out), static_cast<std::uint64_t>(count), seed);
  CUDA_CHECK(cudaGetLastError());
}

// Fills `count` elements of type `type` at `out` with the pattern, on `stream`.
void fill_pattern(void* out, cudaDataType_t type, std::int64_t count, std::uint64_t seed,
                  cudaStream_t stream) {
  switch (type) {
    case CUDA_R_16BF:
      launch_fill<__nv_bfloat16>(out, count, seed, stream);
      return;
    case CUDA_R_16F:
      launch_fill<__half>(out, count, seed, stream);
      return;
    case CUDA_R_8F_E4M3:
      launch_fill<__nv_fp8_e4m3>(out, count, seed, stream);
      return;
    default:
      throw std::invalid_argument("fill_pattern: unsupported cudaDataType_t " +
                                  std::to_string(static_cast<int>(type)));
  }
}

float output_to_float(std::uint16_t bits, GemmDtype dtype) {
  if (dtype == GemmDtype::kFp16) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);  // bf16
}

// ---------------------------------------------------------------------------------------------
// One configured cuBLASLt matmul: descriptors for the TN problem of gemm_shape.hpp and the
// heuristic's top algorithm for the given workspace limit.

class LtGemm {
 public:
  // fp8_scale: device pointer to one float (1.0) used as the A and B scale for FP8; unused
  // otherwise.
  // ld_d: leading dimension of C and D (0: m); a larger one writes an m-row slice of a taller D.
  LtGemm(cublasLtHandle_t handle, const GemmShape& shape, std::int64_t workspace_limit_bytes,
         const float* fp8_scale, std::int64_t ld_d = 0)
      : handle_(handle), workspace_limit_bytes_(workspace_limit_bytes) {
    cublasLtMatmulDesc_t raw_desc = nullptr;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&raw_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    desc_.reset(raw_desc);
    const cublasOperation_t transa = CUBLAS_OP_T;
    const cublasOperation_t transb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_.get(), CUBLASLT_MATMUL_DESC_TRANSA, &transa,
                                                sizeof(transa)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_.get(), CUBLASLT_MATMUL_DESC_TRANSB, &transb,
                                                sizeof(transb)));
    if (shape.dtype == GemmDtype::kFp8E4m3) {
      // Per-tensor fp32 scales of A and B (device pointers). D is bf16, so no D scale or amax.
      const void* scale = fp8_scale;
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
          desc_.get(), CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale, sizeof(scale)));
      CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
          desc_.get(), CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale, sizeof(scale)));
    }

    const cudaDataType_t in = input_cuda_type(shape.dtype);
    const cudaDataType_t out = output_cuda_type(shape.dtype);
    a_layout_ = make_layout(in, shape.k, shape.m, shape.k);  // op(A) = A^T is m x k
    b_layout_ = make_layout(in, shape.k, shape.n, shape.k);
    const std::int64_t ld = ld_d > 0 ? ld_d : shape.m;
    c_layout_ = make_layout(out, shape.m, shape.n, ld);
    d_layout_ = make_layout(out, shape.m, shape.n, ld);

    cublasLtMatmulPreference_t raw_preference = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw_preference));
    const MatmulPreference preference(raw_preference);
    const auto limit = static_cast<std::uint64_t>(workspace_limit_bytes);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        preference.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &limit, sizeof(limit)));

    int returned = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        handle_, desc_.get(), a_layout_.get(), b_layout_.get(), c_layout_.get(), d_layout_.get(),
        preference.get(), 1, &heuristic_, &returned);
    if (status == CUBLAS_STATUS_NOT_SUPPORTED ||
        (status == CUBLAS_STATUS_SUCCESS &&
         (returned == 0 || heuristic_.state != CUBLAS_STATUS_SUCCESS))) {
      throw std::runtime_error("cuBLASLt has no algorithm for GEMM " + to_string(shape) +
                               " (TN, fp32 accumulate) on this GPU with a " +
                               std::to_string(workspace_limit_bytes) + "-byte workspace");
    }
    if (status != CUBLAS_STATUS_SUCCESS) {
      detail::throw_cublas_error(status, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
    }
  }

  // D = alpha A^T B + beta C on `stream`; `workspace` holds workspace_limit_bytes.
  void run(const void* a, const void* b, const void* c, void* d, float alpha, float beta,
           void* workspace, cudaStream_t stream) const {
    CUBLAS_CHECK(cublasLtMatmul(handle_, desc_.get(), &alpha, a, a_layout_.get(), b,
                                b_layout_.get(), &beta, c, c_layout_.get(), d, d_layout_.get(),
                                &heuristic_.algo, workspace,
                                static_cast<std::size_t>(workspace_limit_bytes_), stream));
  }

  // Copies the chosen algorithm's configuration into `timing`.
  void describe(GemmTiming& timing) const {
    timing.algo_id = config<std::int32_t>(CUBLASLT_ALGO_CONFIG_ID);
    timing.tile_id = config<std::uint32_t>(CUBLASLT_ALGO_CONFIG_TILE_ID);
    timing.stages_id = config<std::uint32_t>(CUBLASLT_ALGO_CONFIG_STAGES_ID);
    timing.split_k_count = config<std::int32_t>(CUBLASLT_ALGO_CONFIG_SPLITK_NUM);
    timing.cluster_shape_id = config<std::uint16_t>(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID);
    timing.heuristic_waves = heuristic_.wavesCount;
    timing.workspace_bytes = static_cast<std::int64_t>(heuristic_.workspaceSize);
    timing.workspace_limit_bytes = workspace_limit_bytes_;
  }

 private:
  // Value types are those cublasLt.h documents for each attribute.
  template <typename T>
  std::int64_t config(cublasLtMatmulAlgoConfigAttributes_t attribute) const {
    T value{};
    std::size_t written = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&heuristic_.algo, attribute, &value,
                                                      sizeof(value), &written));
    return static_cast<std::int64_t>(value);
  }

  cublasLtHandle_t handle_;
  std::int64_t workspace_limit_bytes_;
  MatmulDesc desc_;
  MatrixLayout a_layout_;
  MatrixLayout b_layout_;
  MatrixLayout c_layout_;
  MatrixLayout d_layout_;
  cublasLtMatmulHeuristicResult_t heuristic_{};
};

// Device pointer to a float 1.0, the FP8 per-tensor scale (null buffer for other dtypes).
DeviceBuffer make_fp8_scale(GemmDtype dtype) {
  if (dtype != GemmDtype::kFp8E4m3) {
    return DeviceBuffer();
  }
  DeviceBuffer scale = device_alloc(sizeof(float));
  const float one = 1.0f;
  CUDA_CHECK(cudaMemcpy(scale.get(), &one, sizeof(one), cudaMemcpyHostToDevice));
  return scale;
}

DeviceBuffer make_workspace(std::int64_t bytes) {
  return bytes > 0 ? device_alloc(bytes) : DeviceBuffer();
}

int compute_capability(int device) {
  int major = 0;
  int minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// How many copies of A and B to rotate through: enough that they exceed 2x the L2 cache, no more
// than there are launches, and no more than fit in free device memory beside D and the workspace.
std::int64_t rotation_copies(const GemmShape& shape, const GemmTimingOptions& options,
                             std::int64_t l2_bytes, std::int64_t copy_bytes) {
  if (!options.rotate_buffers) {
    return 1;
  }
  const std::int64_t launches =
      static_cast<std::int64_t>(options.warmup_iterations) + options.iterations;
  std::int64_t copies = std::min(2 * l2_bytes / copy_bytes + 1, launches);
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const std::int64_t spare = static_cast<std::int64_t>(free_bytes) - shape.d_bytes() -
                             options.workspace_bytes - kMemoryHeadroomBytes;
  copies = std::min(copies, spare / copy_bytes);
  return std::max<std::int64_t>(copies, 1);
}

}  // namespace

GemmTiming time_gemm(const GemmShape& shape, const GemmTimingOptions& options) {
  validate_gemm_shape(shape);
  if (options.iterations < 1 || options.warmup_iterations < 0 || options.workspace_bytes < 0) {
    throw std::invalid_argument("time_gemm " + to_string(shape) +
                                ": need iterations >= 1, warmup_iterations >= 0 and "
                                "workspace_bytes >= 0");
  }
  const ScopedDevice scoped_device(options.device);

  GemmTiming timing;
  timing.shape = shape;
  cudaDeviceProp properties{};
  CUDA_CHECK(cudaGetDeviceProperties(&properties, options.device));
  timing.device_name = properties.name;
  timing.compute_capability = compute_capability(options.device);
  int l2_bytes = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, options.device));
  timing.l2_cache_bytes = l2_bytes;
  timing.cublaslt_version = static_cast<std::int64_t>(cublasLtGetVersion());

  // Configure.
  const LtHandle handle = make_lt_handle();
  const DeviceBuffer fp8_scale = make_fp8_scale(shape.dtype);
  const LtGemm gemm(handle.get(), shape, options.workspace_bytes,
                    static_cast<const float*>(fp8_scale.get()));
  gemm.describe(timing);

  // Workspace and buffers: `copies` copies of A and of B, each 256-byte aligned, filled with
  // the pattern (different values in every copy); one D, also passed as C (beta is 0).
  const std::int64_t a_stride = round_up(shape.a_bytes(), kBufferAlignmentBytes);
  const std::int64_t b_stride = round_up(shape.b_bytes(), kBufferAlignmentBytes);
  const std::int64_t copies = rotation_copies(shape, options, l2_bytes, a_stride + b_stride);
  timing.buffer_copies = copies;
  const Stream stream = make_stream();
  const DeviceBuffer a_all = device_alloc(copies * a_stride);
  const DeviceBuffer b_all = device_alloc(copies * b_stride);
  const DeviceBuffer d = device_alloc(shape.d_bytes());
  const DeviceBuffer workspace = make_workspace(options.workspace_bytes);
  const std::int64_t element_bytes = input_element_bytes(shape.dtype);
  const cudaDataType_t in = input_cuda_type(shape.dtype);
  fill_pattern(a_all.get(), in, copies * a_stride / element_bytes, kSeedA, stream.get());
  fill_pattern(b_all.get(), in, copies * b_stride / element_bytes, kSeedB, stream.get());
  CUDA_CHECK(cudaMemsetAsync(d.get(), 0, static_cast<std::size_t>(shape.d_bytes()), stream.get()));

  const auto launch = [&](std::int64_t index) {
    const std::int64_t copy = index % copies;
    gemm.run(bytes_of(a_all) + copy * a_stride, bytes_of(b_all) + copy * b_stride, d.get(),
             d.get(), 1.0f, 0.0f, workspace.get(), stream.get());
  };

  // Warm up (module loading, clocks), then profile with one event pair per iteration, enqueued
  // back to back and read after a single synchronisation.
  for (int i = 0; i < options.warmup_iterations; ++i) {
    launch(i);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));

  std::vector<Event> starts;
  std::vector<Event> stops;
  starts.reserve(static_cast<std::size_t>(options.iterations));
  stops.reserve(static_cast<std::size_t>(options.iterations));
  for (int i = 0; i < options.iterations; ++i) {
    starts.push_back(make_event());
    stops.push_back(make_event());
  }
  for (int i = 0; i < options.iterations; ++i) {
    CUDA_CHECK(cudaEventRecord(starts[i].get(), stream.get()));
    launch(static_cast<std::int64_t>(options.warmup_iterations) + i);
    CUDA_CHECK(cudaEventRecord(stops[i].get(), stream.get()));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));

  timing.samples_s.reserve(static_cast<std::size_t>(options.iterations));
  for (int i = 0; i < options.iterations; ++i) {
    float elapsed_ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&elapsed_ms, starts[i].get(), stops[i].get()));
    timing.samples_s.push_back(static_cast<double>(elapsed_ms) * 1e-3);
  }
  timing.median_s = median_of(timing.samples_s);
  timing.achieved_flops_per_s = timing.median_s > 0 ? shape.flops() / timing.median_s : 0;
  return timing;
}

double verify_gemm_against_reference(const GemmShape& shape, int device) {
  validate_gemm_shape(shape);
  if (static_cast<double>(shape.m) * static_cast<double>(shape.n) * static_cast<double>(shape.k) >
          static_cast<double>(kVerifyMaxMultiplyAdds) ||
      shape.k > kVerifyMaxK) {
    throw std::invalid_argument("verify_gemm_against_reference " + to_string(shape) +
                                ": too large for the CPU reference (m n k <= 2^28, k <= 2^16)");
  }
  const ScopedDevice scoped_device(device);

  const LtHandle handle = make_lt_handle();
  const DeviceBuffer fp8_scale = make_fp8_scale(shape.dtype);
  const GemmTimingOptions defaults;
  const LtGemm gemm(handle.get(), shape, defaults.workspace_bytes,
                    static_cast<const float*>(fp8_scale.get()));

  const Stream stream = make_stream();
  const DeviceBuffer a = device_alloc(shape.a_bytes());
  const DeviceBuffer b = device_alloc(shape.b_bytes());
  const DeviceBuffer c = device_alloc(shape.d_bytes());
  const DeviceBuffer d = device_alloc(shape.d_bytes());
  const DeviceBuffer workspace = make_workspace(defaults.workspace_bytes);
  const cudaDataType_t in = input_cuda_type(shape.dtype);
  const cudaDataType_t out = output_cuda_type(shape.dtype);
  fill_pattern(a.get(), in, shape.m * shape.k, kSeedA, stream.get());
  fill_pattern(b.get(), in, shape.k * shape.n, kSeedB, stream.get());
  fill_pattern(c.get(), out, shape.m * shape.n, kSeedC, stream.get());
  CUDA_CHECK(cudaMemsetAsync(d.get(), 0, static_cast<std::size_t>(shape.d_bytes()), stream.get()));
  constexpr float kAlpha = 1.0f;
  constexpr float kBeta = 0.5f;
  gemm.run(a.get(), b.get(), c.get(), d.get(), kAlpha, kBeta, workspace.get(), stream.get());
  std::vector<std::uint16_t> d_bits(static_cast<std::size_t>(shape.m * shape.n));
  CUDA_CHECK(cudaMemcpyAsync(d_bits.data(), d.get(), static_cast<std::size_t>(shape.d_bytes()),
                             cudaMemcpyDeviceToHost, stream.get()));
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));

  // The same operands on the host, row-major for gemm_reference. Device storage (TN):
  // A(i, p) at i k + p, B(p, j) at p + j k, C(i, j) at i + j m, D(i, j) at i + j m.
  const auto m = static_cast<std::size_t>(shape.m);
  const auto n = static_cast<std::size_t>(shape.n);
  const auto k = static_cast<std::size_t>(shape.k);
  std::vector<float> a_host(m * k);
  std::vector<float> b_host(k * n);
  std::vector<float> c_host(m * n);
  for (std::size_t i = 0; i < m * k; ++i) {
    a_host[i] = pattern_value(i, kSeedA);
  }
  for (std::size_t p = 0; p < k; ++p) {
    for (std::size_t j = 0; j < n; ++j) {
      b_host[p * n + j] = pattern_value(p + j * k, kSeedB);
    }
  }
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      c_host[i * n + j] = pattern_value(i + j * m, kSeedC);
    }
  }
  const std::vector<float> expected =
      gemm_reference(shape.m, shape.n, shape.k, a_host, b_host, kAlpha, c_host, kBeta);

  double max_relative_error = 0;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double actual = output_to_float(d_bits[i + j * m], shape.dtype);
      const double reference = expected[i * n + j];
      if (!std::isfinite(actual)) {
        return std::numeric_limits<double>::infinity();
      }
      max_relative_error = std::max(
          max_relative_error, std::abs(actual - reference) / std::max(std::abs(reference), 1.0));
    }
  }
  return max_relative_error;
}

bool gemm_dtype_supported(GemmDtype dtype, int device) {
  const int cc = compute_capability(device);
  return dtype == GemmDtype::kFp8E4m3 ? cc >= 89 : cc >= 80;
}

struct LtMatmul::Impl {
  LtHandle handle;
  DeviceBuffer scale;
  DeviceBuffer workspace;
  std::unique_ptr<LtGemm> gemm;
};

LtMatmul::LtMatmul(const GemmShape& shape, std::int64_t ld_d, std::int64_t workspace_limit_bytes)
    : impl_(std::make_unique<Impl>()) {
  validate_gemm_shape(shape);
  impl_->handle = make_lt_handle();
  impl_->scale = make_fp8_scale(shape.dtype);
  impl_->workspace = make_workspace(workspace_limit_bytes);
  impl_->gemm = std::make_unique<LtGemm>(impl_->handle.get(), shape, workspace_limit_bytes,
                                         static_cast<const float*>(impl_->scale.get()), ld_d);
}

LtMatmul::~LtMatmul() = default;

void LtMatmul::run(const void* a, const void* b, void* d, cudaStream_t stream) const {
  impl_->gemm->run(a, b, d, d, 1.0f, 0.0f, impl_->workspace.get(), stream);
}

void LtMatmul::describe(GemmTiming& timing) const { impl_->gemm->describe(timing); }

}  // namespace clustersim::kernels
