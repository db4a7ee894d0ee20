#include "kernels/tp_overlap.hpp"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "kernels/lt_matmul.hpp"
#include "kernels/nccl_group.hpp"

namespace clustersim::kernels {

namespace {

using detail::DeviceMemory;
using detail::NcclGroup;
using detail::OwnedEvent;
using detail::OwnedStream;

constexpr std::int64_t kBf16Bytes = 2;
constexpr int kReduceThreads = 256;
constexpr unsigned kReduceBlocks = 32;  // the SMs fused_ce's reduction may take

enum class Mode { kGemmAlone, kCommAlone, kSequential, kOverlapped };

// out[i] = sum over p < parts of in[p * count + i], accumulated in fp32.
__global__ void sum_bf16_parts_kernel(const __nv_bfloat16* in, int parts, std::int64_t count,
                                      __nv_bfloat16* out) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    float sum = 0.0f;
    for (int p = 0; p < parts; ++p) sum += __bfloat162float(in[static_cast<std::int64_t>(p) * count + i]);
    out[i] = __float2bfloat16_rn(sum);
  }
}

double median_of(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : 0.5 * (samples[mid - 1] + samples[mid]);
}

void validate(const OverlapConfig& c) {
  if (c.variant != "decomposed" && c.variant != "fused_ce") {
    throw std::invalid_argument("TP overlap: unknown variant '" + c.variant + "'");
  }
  if (c.ranks < 2 || c.chunks < c.ranks || c.chunks % c.ranks != 0 || c.m <= 0 || c.n <= 0 ||
      c.k <= 0 || c.m % c.chunks != 0 || (c.all_gather_gemm ? c.n : c.k) % c.ranks != 0) {
    throw std::invalid_argument("TP overlap: need >= 2 ranks, chunks a multiple of ranks dividing m, "
                                "and " + std::string(c.all_gather_gemm ? "n" : "k") + " divisible by ranks");
  }
}

class TpOverlap {
 public:
  TpOverlap(const OverlapConfig& c, int first_device)
      : c_(c), ranks_(c.ranks), steps_(c.chunks / c.ranks), rows_(c.m / c.chunks),
        step_rows_(rows_ * c.ranks), k_local_(c.all_gather_gemm ? c.k : c.k / c.ranks),
        n_local_(c.all_gather_gemm ? c.n / c.ranks : c.n),
        group_(c.ranks, first_device, {"any", "any", c.variant == "decomposed" ? c.max_ctas : 0, 0}) {
    if (c_.variant == "fused_ce") enable_peer_access();
    const std::int64_t m = c.m;
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      Rank me;
      me.comm = detail::make_high_priority_stream();
      me.gemm = detail::make_stream();
      for (int s = 0; s < steps_; ++s) {
        me.comm_done.push_back(detail::make_event(false));
        me.gemm_done.push_back(detail::make_event(false));
      }
      me.start = detail::make_event(false);
      me.comm_end = detail::make_event(false);
      me.gemm_end = detail::make_event(false);
      if (c.all_gather_gemm) {
        me.a = detail::device_malloc(bytes(m / ranks_ * k_local_));
        me.gathered = detail::device_malloc(bytes(m * k_local_));
        me.out = detail::device_malloc(bytes(m * n_local_));
      } else {
        me.a = detail::device_malloc(bytes(m * k_local_));
        me.partial = detail::device_malloc(bytes(m * n_local_));
        me.out = detail::device_malloc(bytes(m / ranks_ * n_local_));
        if (c_.variant == "fused_ce") me.staging = detail::device_malloc(bytes(ranks_ * rows_ * n_local_));
      }
      me.w = detail::device_malloc(bytes(n_local_ * k_local_));
      const std::uint64_t seed = c.all_gather_gemm ? 100 : 300;
      detail::fill_bf16(me.a.get(), a_elements(), seed + static_cast<std::uint64_t>(r), group_.stream(r));
      detail::fill_bf16(me.w.get(), n_local_ * k_local_, seed + 100 + static_cast<std::uint64_t>(r),
                        group_.stream(r));
      me.matmul = std::make_unique<LtMatmul>(GemmShape{n_local_, step_rows_, k_local_, GemmDtype::kBf16});
      CUDA_CHECK(cudaStreamSynchronize(group_.stream(r)));
      rank_.push_back(std::move(me));
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  NcclGroup& group() { return group_; }
  int comm_sms() const {
    if (c_.variant == "fused_ce") return c_.all_gather_gemm ? 0 : static_cast<int>(kReduceBlocks);
    return c_.max_ctas > 0 ? c_.max_ctas : -1;
  }
  std::int64_t a_elements() const { return c_.all_gather_gemm ? c_.m / ranks_ * k_local_ : c_.m * k_local_; }
  std::int64_t out_elements() const {
    return c_.all_gather_gemm ? c_.m * n_local_ : c_.m / ranks_ * n_local_;
  }
  const void* out(int r) const { return rank_[static_cast<std::size_t>(r)].out.get(); }

  // One iteration in `mode`, starting and ending on rank 0's group stream.
  void enqueue(Mode mode) {
    group_.fork_from_rank0();
    for (int r = 0; r < ranks_; ++r) {
      Rank& me = at(r);
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      CUDA_CHECK(cudaEventRecord(me.start.get(), group_.stream(r)));
      CUDA_CHECK(cudaStreamWaitEvent(me.comm.get(), me.start.get(), 0));
      CUDA_CHECK(cudaStreamWaitEvent(me.gemm.get(), me.start.get(), 0));
    }
    const bool comm = mode != Mode::kGemmAlone;
    const bool gemm = mode != Mode::kCommAlone;
    const bool linked = mode == Mode::kSequential || mode == Mode::kOverlapped;
    const bool sequential = mode == Mode::kSequential;
    // Producers are enqueued before consumers: cudaStreamWaitEvent waits for the latest record.
    if (c_.all_gather_gemm) {
      if (comm) comm_steps(false, false);
      if (gemm) gemm_steps(linked, sequential);
    } else {
      if (gemm) gemm_steps(false, false);
      if (comm) comm_steps(linked, sequential);
    }
    for (int r = 0; r < ranks_; ++r) {
      Rank& me = at(r);
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      CUDA_CHECK(cudaEventRecord(me.comm_end.get(), me.comm.get()));
      CUDA_CHECK(cudaEventRecord(me.gemm_end.get(), me.gemm.get()));
      CUDA_CHECK(cudaStreamWaitEvent(group_.stream(r), me.comm_end.get(), 0));
      CUDA_CHECK(cudaStreamWaitEvent(group_.stream(r), me.gemm_end.get(), 0));
    }
    group_.join_into_rank0();
  }

 private:
  struct Rank {
    OwnedStream comm, gemm;
    std::vector<OwnedEvent> comm_done, gemm_done;  // per step
    OwnedEvent start, comm_end, gemm_end;
    DeviceMemory a, w, gathered, partial, out, staging;
    std::unique_ptr<LtMatmul> matmul;
  };

  static std::size_t bytes(std::int64_t elements) {
    return static_cast<std::size_t>(elements * kBf16Bytes);
  }
  static char* ptr(const DeviceMemory& m, std::int64_t elements) {
    return static_cast<char*>(m.get()) + elements * kBf16Bytes;
  }
  Rank& at(int r) { return rank_[static_cast<std::size_t>(r)]; }

  void enable_peer_access() {
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      for (int p = 0; p < ranks_; ++p) {
        if (p == r) continue;
        int can = 0;
        CUDA_CHECK(cudaDeviceCanAccessPeer(&can, group_.device(r), group_.device(p)));
        if (can == 0) continue;  // cudaMemcpyPeerAsync still works, staged by the driver
        const cudaError_t status = cudaDeviceEnablePeerAccess(group_.device(p), 0);
        if (status == cudaErrorPeerAccessAlreadyEnabled) {
          (void)cudaGetLastError();
        } else {
          CUDA_CHECK(status);
        }
      }
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  // GEMM of every step on each rank's GEMM stream; with `linked`, AG's step s first waits for
  // its gathered rows (sequential: for the whole gather).
  void gemm_steps(bool linked, bool sequential) {
    for (int r = 0; r < ranks_; ++r) {
      Rank& me = at(r);
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      for (int s = 0; s < steps_; ++s) {
        const auto step = static_cast<std::size_t>(s);
        if (linked) {
          const std::size_t wait = sequential ? static_cast<std::size_t>(steps_ - 1) : step;
          CUDA_CHECK(cudaStreamWaitEvent(me.gemm.get(), me.comm_done[wait].get(), 0));
        }
        const std::int64_t first_row = s * step_rows_;
        const void* rows = c_.all_gather_gemm ? ptr(me.gathered, first_row * k_local_)
                                              : ptr(me.a, first_row * k_local_);
        void* d = c_.all_gather_gemm ? ptr(me.out, first_row * n_local_) : ptr(me.partial, first_row * n_local_);
        me.matmul->run(me.w.get(), rows, d, me.gemm.get());
        CUDA_CHECK(cudaEventRecord(me.gemm_done[step].get(), me.gemm.get()));
      }
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  // Communication of every step on each rank's communication stream; with `linked`, RS's step
  // s first waits for the GEMM rows it reduces (fused_ce: on every rank it reads from).
  void comm_steps(bool linked, bool sequential) {
    for (int s = 0; s < steps_; ++s) {
      const auto step = static_cast<std::size_t>(s);
      const std::size_t wait = sequential ? static_cast<std::size_t>(steps_ - 1) : step;
      if (linked) {
        for (int r = 0; r < ranks_; ++r) {
          CUDA_CHECK(cudaSetDevice(group_.device(r)));
          if (c_.variant == "fused_ce") {
            for (int p = 0; p < ranks_; ++p) {
              CUDA_CHECK(cudaStreamWaitEvent(at(r).comm.get(), at(p).gemm_done[wait].get(), 0));
            }
          } else {
            CUDA_CHECK(cudaStreamWaitEvent(at(r).comm.get(), at(r).gemm_done[wait].get(), 0));
          }
        }
      }
      if (c_.variant == "fused_ce") {
        copy_engine_step(s);
      } else {
        nccl_step(s);
      }
      for (int r = 0; r < ranks_; ++r) {
        CUDA_CHECK(cudaSetDevice(group_.device(r)));
        CUDA_CHECK(cudaEventRecord(at(r).comm_done[step].get(), at(r).comm.get()));
      }
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  void nccl_step(int s) {
    const auto count = static_cast<std::size_t>(rows_ * (c_.all_gather_gemm ? k_local_ : n_local_));
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < ranks_; ++r) {
      Rank& me = at(r);
      if (c_.all_gather_gemm) {
        NCCL_CHECK(ncclAllGather(ptr(me.a, s * rows_ * k_local_), ptr(me.gathered, s * step_rows_ * k_local_),
                                 count, ncclBfloat16, group_.comm(r), me.comm.get()));
      } else {
        NCCL_CHECK(ncclReduceScatter(ptr(me.partial, s * step_rows_ * n_local_), ptr(me.out, s * rows_ * n_local_),
                                     count, ncclBfloat16, ncclSum, group_.comm(r), me.comm.get()));
      }
    }
    NCCL_CHECK(ncclGroupEnd());
  }

  // Each rank pulls from every rank (itself included) over the copy engines.
  void copy_engine_step(int s) {
    for (int r = 0; r < ranks_; ++r) {
      Rank& me = at(r);
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      for (int p = 0; p < ranks_; ++p) {
        const Rank& peer = at(p);
        if (c_.all_gather_gemm) {
          CUDA_CHECK(cudaMemcpyPeerAsync(ptr(me.gathered, (s * ranks_ + p) * rows_ * k_local_), group_.device(r),
                                         ptr(peer.a, s * rows_ * k_local_), group_.device(p),
                                         bytes(rows_ * k_local_), me.comm.get()));
        } else {
          CUDA_CHECK(cudaMemcpyPeerAsync(ptr(me.staging, p * rows_ * n_local_), group_.device(r),
                                         ptr(peer.partial, (s * ranks_ + r) * rows_ * n_local_), group_.device(p),
                                         bytes(rows_ * n_local_), me.comm.get()));
        }
      }
      if (!c_.all_gather_gemm) {
        const std::int64_t count = rows_ * n_local_;
        const auto blocks = static_cast<unsigned>(
            std::min<std::int64_t>((count + kReduceThreads - 1) / kReduceThreads, kReduceBlocks));
        sum_bf16_parts_kernel<<<blocks, kReduceThreads, 0, me.comm.get()>>>(
            static_cast<const __nv_bfloat16*>(me.staging.get()), ranks_, count,
            reinterpret_cast<__nv_bfloat16*>(ptr(me.out, s * rows_ * n_local_)));
        CUDA_CHECK(cudaGetLastError());
      }
    }
  }

  OverlapConfig c_;
  int ranks_, steps_;
  std::int64_t rows_, step_rows_, k_local_, n_local_;
  NcclGroup group_;
  std::vector<Rank> rank_;
};

// Runs one overlapped iteration at a small shape and compares every rank's output with a
// double-precision reference on the same bf16 inputs. Returns max |got - ref| / max(|ref|, 1).
double verify(const OverlapConfig& full, int first_device, double& tolerance) {
  OverlapConfig c = full;
  c.chunks = 2 * c.ranks;
  c.m = 16 * c.chunks;
  c.n = 32 * c.ranks;
  c.k = (c.all_gather_gemm ? 64 : 32) * c.ranks;
  const std::int64_t R = c.ranks, rows = c.m / c.chunks;
  const std::int64_t kl = c.all_gather_gemm ? c.k : c.k / R;
  const std::int64_t nl = c.all_gather_gemm ? c.n / R : c.n;
  TpOverlap overlap(c, first_device);
  overlap.enqueue(Mode::kOverlapped);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<std::vector<float>> a, w;
  const std::uint64_t seed = c.all_gather_gemm ? 100 : 300;
  for (std::int64_t r = 0; r < R; ++r) {
    a.push_back(detail::bf16_fill_values(overlap.a_elements(), seed + static_cast<std::uint64_t>(r)));
    w.push_back(detail::bf16_fill_values(nl * kl, seed + 100 + static_cast<std::uint64_t>(r)));
  }
  const auto dot = [&](const std::vector<float>& x, std::int64_t x_row, const std::vector<float>& y,
                       std::int64_t y_row) {
    double sum = 0;
    for (std::int64_t i = 0; i < kl; ++i) {
      sum += static_cast<double>(x[static_cast<std::size_t>(x_row * kl + i)]) *
             static_cast<double>(y[static_cast<std::size_t>(y_row * kl + i)]);
    }
    return sum;
  };
  double worst = 0;
  for (std::int64_t q = 0; q < R; ++q) {
    CUDA_CHECK(cudaSetDevice(first_device + static_cast<int>(q)));
    const std::vector<float> got = detail::download_bf16(overlap.out(static_cast<int>(q)), overlap.out_elements());
    const std::int64_t out_rows = overlap.out_elements() / nl;
    for (std::int64_t row = 0; row < out_rows; ++row) {
      for (std::int64_t j = 0; j < nl; ++j) {
        double ref = 0;
        if (c.all_gather_gemm) {  // row = (s R + p) rows + i holds shard p's row s rows + i
          const std::int64_t s = row / (R * rows), p = row / rows % R, i = row % rows;
          ref = dot(a[static_cast<std::size_t>(p)], s * rows + i, w[static_cast<std::size_t>(q)], j);
        } else {  // row = s rows + i sums every rank's row (s R + q) rows + i
          const std::int64_t s = row / rows, i = row % rows;
          for (std::int64_t p = 0; p < R; ++p) {
            ref += dot(a[static_cast<std::size_t>(p)], (s * R + q) * rows + i, w[static_cast<std::size_t>(p)], j);
          }
        }
        const double value = got[static_cast<std::size_t>(row * nl + j)];
        worst = std::max(worst, std::abs(value - ref) / std::max(1.0, std::abs(ref)));
      }
    }
  }
  CUDA_CHECK(cudaSetDevice(first_device));
  // AG: one bf16 rounding of an exact fp32 sum. RS: each partial rounded to bf16, then summed
  // and rounded again (NCCL or the reduce kernel); partials may exceed the sum.
  tolerance = c.all_gather_gemm ? 1.0 / 128 : static_cast<double>(R + 2) / 64;
  return worst;
}

}  // namespace

KernelRun run_tp_overlap(const OverlapConfig& c, const TimingOptions& options) {
  validate(c);
  KernelRun run;
  run.operation = std::string(c.all_gather_gemm ? "ag_gemm/" : "gemm_rs/") + c.variant;
  if (options.verify) {
    double tolerance = 0;
    run.verification_error = verify(c, options.first_device, tolerance);
    if (run.verification_error > tolerance) {
      throw std::runtime_error(run.operation + " differs from the CPU reference by " +
                               std::to_string(run.verification_error) + ": not timing it");
    }
  }
  TpOverlap overlap(c, options.first_device);
  NcclGroup& g = overlap.group();
  const auto time_mode = [&](Mode mode, KernelRun& target) {
    return detail::time_iterations(g.stream(0), g.device(0), options,
                                   [&](int) { overlap.enqueue(mode); }, target);
  };
  KernelRun scratch;
  // Communication first: AG's gathered operand is then filled for the GEMM-alone runs.
  const double comm_s = median_of(time_mode(Mode::kCommAlone, scratch));
  const double gemm_s = median_of(time_mode(Mode::kGemmAlone, scratch));
  const double sequential_s = median_of(time_mode(Mode::kSequential, scratch));
  run.samples_s = time_mode(Mode::kOverlapped, run);
  run.attributes = {{"gemm_alone_s", gemm_s},
                    {"comm_alone_s", comm_s},
                    {"sequential_s", sequential_s},
                    {"comm_sms", static_cast<double>(overlap.comm_sms())},
                    {"nccl_max_ctas", static_cast<double>(c.max_ctas)},
                    {"chunks", static_cast<double>(c.chunks)},
                    {"steps", static_cast<double>(c.chunks / c.ranks)}};
  return run;
}

}  // namespace clustersim::kernels
