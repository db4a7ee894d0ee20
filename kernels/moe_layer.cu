#include "kernels/moe_layer.hpp"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/lt_matmul.hpp"
#include "kernels/nccl_group.hpp"

namespace clustersim::kernels {

namespace {

using detail::DeviceMemory;
using detail::NcclGroup;

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;
constexpr std::int64_t kBf16Bytes = 2;
constexpr std::int64_t kGemmWorkspace = 4LL << 20;  // per expert GEMM

enum class Phase { kDispatch, kExpertGemm, kCombine, kAll };

unsigned blocks_for(std::int64_t count) {
  return static_cast<unsigned>(std::clamp<std::int64_t>((count + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

// dst row i = src row index[i], `width` bf16 each.
__global__ void gather_rows_kernel(__nv_bfloat16* __restrict__ dst, const __nv_bfloat16* __restrict__ src,
                                   const std::int64_t* __restrict__ index, std::int64_t rows, std::int64_t width) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < rows * width;
       e += stride) {
    const std::int64_t row = e / width;
    dst[e] = src[index[row] * width + e % width];
  }
}

// y[t, c] = sum_k weight[t topk + k] returned[position[t topk + k], c]; one thread per element.
__global__ void combine_kernel(float* __restrict__ y, const __nv_bfloat16* __restrict__ returned,
                               const std::int64_t* __restrict__ position, const float* __restrict__ weight,
                               std::int64_t tokens, std::int64_t topk, std::int64_t width) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < tokens * width;
       e += stride) {
    const std::int64_t t = e / width;
    float sum = 0.0f;
    for (std::int64_t k = 0; k < topk; ++k) {
      sum += weight[t * topk + k] * __bfloat162float(returned[position[t * topk + k] * width + e % width]);
    }
    y[e] = sum;
  }
}

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

template <typename T>
DeviceMemory upload(const std::vector<T>& values) {
  DeviceMemory m = detail::device_malloc(values.size() * sizeof(T));
  if (!values.empty()) {
    CUDA_CHECK(cudaMemcpy(m.get(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  return m;
}

// Host plan of one rank (the routing is an input: built outside the timed region).
struct RankPlan {
  std::vector<std::int64_t> send_token;        // send row -> local token
  std::vector<std::int64_t> choice_position;   // local t topk + k -> send row
  std::vector<float> choice_weight;            // local t topk + k
  std::vector<std::int64_t> send_offset;       // [R + 1] rows, by destination
  std::vector<std::int64_t> recv_offset;       // [R + 1] rows, by source
  std::vector<std::int64_t> expert_major_src;  // expert-major row -> received (source-major) row
  std::vector<std::int64_t> source_major_src;  // received row -> expert-major row (un-permute)
  std::vector<std::int64_t> expert_rows;       // per local expert
  std::vector<std::int64_t> expert_first_row;  // per local expert
};

class MoeLayer {
 public:
  MoeLayer(const MoeLayerConfig& c, int first_device, const std::vector<float>* x_values,
           const std::vector<float>* w_values)
      : c_(c), ranks_(c.ranks), tokens_(c.routing.tokens / c.ranks),
        experts_per_rank_(c.routing.num_experts / c.ranks), group_(c.ranks, first_device, {}) {
    counts_ = moe_send_counts(c.routing, ranks_);  // validates divisibility
    plan();
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      const RankPlan& p = plans_[sz(r)];
      Buffers b;
      const std::int64_t sent = p.send_offset.back(), received = p.recv_offset.back();
      b.x = detail::device_malloc(sz(tokens_ * c.hidden * kBf16Bytes));
      b.w = detail::device_malloc(sz(experts_per_rank_ * c.ffn * c.hidden * kBf16Bytes));
      if (x_values != nullptr) {
        upload_bf16_slice(b.x, *x_values, r * tokens_ * c.hidden, tokens_ * c.hidden);
        upload_weights(b.w, *w_values, r);
      } else {
        detail::fill_bf16(b.x.get(), tokens_ * c.hidden, 11 + static_cast<std::uint64_t>(r), group_.stream(r));
        detail::fill_bf16(b.w.get(), experts_per_rank_ * c.ffn * c.hidden, 12 + static_cast<std::uint64_t>(r),
                          group_.stream(r));
      }
      b.send = detail::device_malloc(sz(sent * c.hidden * kBf16Bytes));
      b.received = detail::device_malloc(sz(received * c.hidden * kBf16Bytes));
      b.expert_in = detail::device_malloc(sz(received * c.hidden * kBf16Bytes));
      b.expert_out = detail::device_malloc(sz(received * c.ffn * kBf16Bytes));
      b.send_back = detail::device_malloc(sz(received * c.ffn * kBf16Bytes));
      b.returned = detail::device_malloc(sz(sent * c.ffn * kBf16Bytes));
      b.y = detail::device_malloc(sz(tokens_ * c.ffn) * sizeof(float));
      std::vector<std::int64_t> my_counts(sz(ranks_));
      for (int d = 0; d < ranks_; ++d) my_counts[sz(d)] = counts_[sz(r * ranks_ + d)];
      b.count_send = upload(my_counts);
      b.count_recv = detail::device_malloc(sz(ranks_) * sizeof(std::int64_t));
      b.send_token = upload(p.send_token);
      b.choice_position = upload(p.choice_position);
      b.choice_weight = upload(p.choice_weight);
      b.expert_major_src = upload(p.expert_major_src);
      b.source_major_src = upload(p.source_major_src);
      for (std::int64_t e = 0; e < experts_per_rank_; ++e) {
        const std::int64_t rows = p.expert_rows[sz(e)];
        b.gemm.push_back(rows > 0 ? std::make_unique<LtMatmul>(GemmShape{c.ffn, rows, c.hidden, GemmDtype::kBf16}, 0,
                                                               kGemmWorkspace)
                                  : nullptr);
      }
      CUDA_CHECK(cudaStreamSynchronize(group_.stream(r)));
      buffers_.push_back(std::move(b));
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  NcclGroup& group() { return group_; }

  void enqueue(Phase phase) {
    group_.fork_from_rank0();
    if (phase == Phase::kDispatch || phase == Phase::kAll) dispatch();
    if (phase == Phase::kExpertGemm || phase == Phase::kAll) expert_gemms();
    if (phase == Phase::kCombine || phase == Phase::kAll) combine();
    group_.join_into_rank0();
  }

  std::vector<float> y(int r) const {
    std::vector<float> out(sz(tokens_ * c_.ffn));
    CUDA_CHECK(cudaSetDevice(group_.device(r)));
    CUDA_CHECK(cudaMemcpy(out.data(), buffers_[sz(r)].y.get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
    return out;
  }

  double bytes_per_rank(bool dispatch) const {
    std::int64_t most = 0;
    for (int s = 0; s < ranks_; ++s) {
      std::int64_t rows = 0;
      for (int d = 0; d < ranks_; ++d) rows += dispatch ? counts_[sz(s * ranks_ + d)] : counts_[sz(d * ranks_ + s)];
      most = std::max(most, rows);
    }
    return static_cast<double>(most * (dispatch ? c_.hidden : c_.ffn) * kBf16Bytes);
  }

 private:
  struct Buffers {
    DeviceMemory x, w, send, received, expert_in, expert_out, send_back, returned, y;
    DeviceMemory count_send, count_recv, send_token, choice_position, choice_weight, expert_major_src,
        source_major_src;
    std::vector<std::unique_ptr<LtMatmul>> gemm;  // per local expert; null when it has no tokens
  };

  static char* row_ptr(const DeviceMemory& m, std::int64_t row, std::int64_t width) {
    return static_cast<char*>(m.get()) + row * width * kBf16Bytes;
  }

  // x values of global tokens [first, first + count) as bf16.
  static void upload_bf16_slice(const DeviceMemory& m, const std::vector<float>& values, std::int64_t first,
                                std::int64_t count) {
    detail::upload_bf16(m.get(), std::vector<float>(values.begin() + first, values.begin() + first + count));
  }

  // Reference weights are [E, hidden, ffn]; the GEMM wants W_e^T, [ffn, hidden] row-major.
  void upload_weights(const DeviceMemory& m, const std::vector<float>& w, int rank) const {
    std::vector<float> t(sz(experts_per_rank_ * c_.ffn * c_.hidden));
    for (std::int64_t e = 0; e < experts_per_rank_; ++e) {
      const std::int64_t global = rank * experts_per_rank_ + e;
      for (std::int64_t i = 0; i < c_.hidden; ++i) {
        for (std::int64_t j = 0; j < c_.ffn; ++j) {
          t[sz((e * c_.ffn + j) * c_.hidden + i)] = w[sz((global * c_.hidden + i) * c_.ffn + j)];
        }
      }
    }
    detail::upload_bf16(m.get(), t);
  }

  void plan() {
    const MoeRouting& routing = c_.routing;
    const std::int64_t topk = routing.topk;
    const auto R = sz(ranks_);
    // count[s][e]: rows rank s sends to expert e.
    std::vector<std::vector<std::int64_t>> count(R, std::vector<std::int64_t>(sz(routing.num_experts), 0));
    plans_.resize(R);
    for (std::size_t s = 0; s < R; ++s) {
      RankPlan& p = plans_[s];
      std::vector<std::int64_t> order;
      for (std::int64_t t = 0; t < tokens_; ++t) {
        for (std::int64_t k = 0; k < topk; ++k) {
          const std::int64_t choice = (static_cast<std::int64_t>(s) * tokens_ + t) * topk + k;
          order.push_back(choice);
          ++count[s][sz(routing.experts[sz(choice)])];
        }
      }
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return routing.experts[sz(a)] < routing.experts[sz(b)];
      });
      p.choice_position.assign(sz(tokens_ * topk), 0);
      p.choice_weight.assign(sz(tokens_ * topk), 0.0f);
      const std::int64_t first_choice = static_cast<std::int64_t>(s) * tokens_ * topk;
      for (std::size_t i = 0; i < order.size(); ++i) {
        p.send_token.push_back(order[i] / topk - static_cast<std::int64_t>(s) * tokens_);
        p.choice_position[sz(order[i] - first_choice)] = static_cast<std::int64_t>(i);
        p.choice_weight[sz(order[i] - first_choice)] = routing.weights[sz(order[i])];
      }
      p.send_offset = {0};
      for (std::size_t d = 0; d < R; ++d) p.send_offset.push_back(p.send_offset.back() + counts_[s * R + d]);
    }
    for (std::size_t d = 0; d < R; ++d) {
      RankPlan& p = plans_[d];
      p.recv_offset = {0};
      for (std::size_t s = 0; s < R; ++s) p.recv_offset.push_back(p.recv_offset.back() + counts_[s * R + d]);
      const auto first_expert = static_cast<std::int64_t>(d) * experts_per_rank_;
      // Received rows: [source][local expert][rows]. Expert-major: [local expert][source][rows].
      std::vector<std::vector<std::int64_t>> received_first(R, std::vector<std::int64_t>(sz(experts_per_rank_)));
      std::int64_t row = 0;
      for (std::size_t s = 0; s < R; ++s) {
        for (std::int64_t e = 0; e < experts_per_rank_; ++e) {
          received_first[s][sz(e)] = row;
          row += count[s][sz(first_expert + e)];
        }
      }
      p.source_major_src.assign(sz(row), 0);
      std::int64_t out_row = 0;
      for (std::int64_t e = 0; e < experts_per_rank_; ++e) {
        p.expert_first_row.push_back(out_row);
        for (std::size_t s = 0; s < R; ++s) {
          for (std::int64_t i = 0; i < count[s][sz(first_expert + e)]; ++i) {
            const std::int64_t from = received_first[s][sz(e)] + i;
            p.expert_major_src.push_back(from);
            p.source_major_src[sz(from)] = out_row++;
          }
        }
        p.expert_rows.push_back(out_row - p.expert_first_row.back());
      }
    }
  }

  void gather(int r, const DeviceMemory& dst, const DeviceMemory& src, const DeviceMemory& index,
              std::int64_t rows, std::int64_t width) {
    if (rows == 0) return;
    gather_rows_kernel<<<blocks_for(rows * width), kThreads, 0, group_.stream(r)>>>(
        static_cast<__nv_bfloat16*>(dst.get()), static_cast<const __nv_bfloat16*>(src.get()),
        static_cast<const std::int64_t*>(index.get()), rows, width);
    CUDA_CHECK(cudaGetLastError());
  }

  // All-to-all-v of rows `width` wide; offsets in rows, pairs with no rows skipped on both sides.
  void exchange(const std::vector<const DeviceMemory*>& send, const std::vector<const DeviceMemory*>& recv,
                bool forward, std::int64_t width) {
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < ranks_; ++r) {
      const RankPlan& p = plans_[sz(r)];
      const std::vector<std::int64_t>& out_offset = forward ? p.send_offset : p.recv_offset;
      const std::vector<std::int64_t>& in_offset = forward ? p.recv_offset : p.send_offset;
      for (int peer = 0; peer < ranks_; ++peer) {
        const std::int64_t out_rows = out_offset[sz(peer + 1)] - out_offset[sz(peer)];
        const std::int64_t in_rows = in_offset[sz(peer + 1)] - in_offset[sz(peer)];
        if (out_rows > 0) {
          NCCL_CHECK(ncclSend(row_ptr(*send[sz(r)], out_offset[sz(peer)], width), sz(out_rows * width),
                              ncclBfloat16, peer, group_.comm(r), group_.stream(r)));
        }
        if (in_rows > 0) {
          NCCL_CHECK(ncclRecv(row_ptr(*recv[sz(r)], in_offset[sz(peer)], width), sz(in_rows * width),
                              ncclBfloat16, peer, group_.comm(r), group_.stream(r)));
        }
      }
    }
    NCCL_CHECK(ncclGroupEnd());
  }

  void dispatch() {
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      gather(r, buffers_[sz(r)].send, buffers_[sz(r)].x, buffers_[sz(r)].send_token, plans_[sz(r)].send_offset.back(),
             c_.hidden);
    }
    // Counts first, read back on the host (a real layer cannot post its receives without them).
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < ranks_; ++r) {
      for (int peer = 0; peer < ranks_; ++peer) {
        NCCL_CHECK(ncclSend(static_cast<const std::int64_t*>(buffers_[sz(r)].count_send.get()) + peer, 1, ncclInt64,
                            peer, group_.comm(r), group_.stream(r)));
        NCCL_CHECK(ncclRecv(static_cast<std::int64_t*>(buffers_[sz(r)].count_recv.get()) + peer, 1, ncclInt64, peer,
                            group_.comm(r), group_.stream(r)));
      }
    }
    NCCL_CHECK(ncclGroupEnd());
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      std::vector<std::int64_t> got(sz(ranks_));
      CUDA_CHECK(cudaMemcpyAsync(got.data(), buffers_[sz(r)].count_recv.get(), got.size() * sizeof(std::int64_t),
                                 cudaMemcpyDeviceToHost, group_.stream(r)));
      CUDA_CHECK(cudaStreamSynchronize(group_.stream(r)));
      for (int s = 0; s < ranks_; ++s) {
        const RankPlan& p = plans_[sz(r)];
        if (got[sz(s)] != p.recv_offset[sz(s + 1)] - p.recv_offset[sz(s)]) {
          throw std::runtime_error("MoE dispatch: rank " + std::to_string(r) + " received count " +
                                   std::to_string(got[sz(s)]) + " from rank " + std::to_string(s) +
                                   ", the plan says otherwise");
        }
      }
    }
    std::vector<const DeviceMemory*> send, recv;
    for (const Buffers& b : buffers_) {
      send.push_back(&b.send);
      recv.push_back(&b.received);
    }
    exchange(send, recv, true, c_.hidden);
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      gather(r, buffers_[sz(r)].expert_in, buffers_[sz(r)].received, buffers_[sz(r)].expert_major_src,
             plans_[sz(r)].recv_offset.back(), c_.hidden);
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  void expert_gemms() {
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      const Buffers& b = buffers_[sz(r)];
      const RankPlan& p = plans_[sz(r)];
      for (std::int64_t e = 0; e < experts_per_rank_; ++e) {
        if (!b.gemm[sz(e)]) continue;
        const std::int64_t first = p.expert_first_row[sz(e)];
        b.gemm[sz(e)]->run(static_cast<const char*>(b.w.get()) + e * c_.ffn * c_.hidden * kBf16Bytes,
                           row_ptr(b.expert_in, first, c_.hidden), row_ptr(b.expert_out, first, c_.ffn),
                           group_.stream(r));
      }
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  void combine() {
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      gather(r, buffers_[sz(r)].send_back, buffers_[sz(r)].expert_out, buffers_[sz(r)].source_major_src,
             plans_[sz(r)].recv_offset.back(), c_.ffn);
    }
    std::vector<const DeviceMemory*> send, recv;
    for (const Buffers& b : buffers_) {
      send.push_back(&b.send_back);
      recv.push_back(&b.returned);
    }
    exchange(send, recv, false, c_.ffn);
    for (int r = 0; r < ranks_; ++r) {
      CUDA_CHECK(cudaSetDevice(group_.device(r)));
      const Buffers& b = buffers_[sz(r)];
      combine_kernel<<<blocks_for(tokens_ * c_.ffn), kThreads, 0, group_.stream(r)>>>(
          static_cast<float*>(b.y.get()), static_cast<const __nv_bfloat16*>(b.returned.get()),
          static_cast<const std::int64_t*>(b.choice_position.get()), static_cast<const float*>(b.choice_weight.get()),
          tokens_, c_.routing.topk, c_.ffn);
      CUDA_CHECK(cudaGetLastError());
    }
    CUDA_CHECK(cudaSetDevice(group_.device(0)));
  }

  MoeLayerConfig c_;
  int ranks_;
  std::int64_t tokens_, experts_per_rank_;
  NcclGroup group_;
  std::vector<std::int64_t> counts_;
  std::vector<RankPlan> plans_;
  std::vector<Buffers> buffers_;
};

// A deterministic routing with distinct experts per token, uneven loads and some experts idle.
MoeRouting small_routing(std::int64_t tokens, std::int64_t experts, std::int64_t topk) {
  MoeRouting r;
  r.tokens = tokens;
  r.topk = topk;
  r.num_experts = experts;
  for (std::int64_t t = 0; t < tokens; ++t) {
    float total = 0;
    for (std::int64_t k = 0; k < topk; ++k) total += static_cast<float>(k + 1);
    for (std::int64_t k = 0; k < topk; ++k) {
      r.experts.push_back(static_cast<std::int32_t>((t * t % 5 + k * (experts / topk > 0 ? experts / topk : 1)) % experts));
      r.weights.push_back(static_cast<float>(k + 1) / total);
    }
  }
  // Fall back to consecutive experts if the formula repeated one within a token.
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::vector<std::int32_t> seen(r.experts.begin() + t * topk, r.experts.begin() + (t + 1) * topk);
    std::sort(seen.begin(), seen.end());
    if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) {
      for (std::int64_t k = 0; k < topk; ++k) r.experts[sz(t * topk + k)] = static_cast<std::int32_t>((t + k) % experts);
    }
  }
  validate_moe_routing(r);
  return r;
}

double verify(const MoeLayerConfig& full, int first_device) {
  MoeLayerConfig c;
  c.ranks = full.ranks;
  c.hidden = 64;
  c.ffn = 48;
  c.routing = small_routing(12 * full.ranks, full.routing.num_experts, full.routing.topk);
  const std::vector<float> x = detail::bf16_fill_values(c.routing.tokens * c.hidden, 21);
  const std::vector<float> w = detail::bf16_fill_values(c.routing.num_experts * c.hidden * c.ffn, 22);
  MoeLayer layer(c, first_device, &x, &w);
  layer.enqueue(Phase::kAll);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> ref = moe_layer_reference(c.routing, c.hidden, c.ffn, x, w);
  const std::int64_t per_rank = c.routing.tokens / c.ranks * c.ffn;
  // Normalised by the largest |y|: a token's expert outputs may be larger than their weighted
  // sum, and each carries its own bf16 rounding.
  double scale = 1;
  for (float v : ref) scale = std::max(scale, std::abs(static_cast<double>(v)));
  double worst = 0;
  for (int r = 0; r < c.ranks; ++r) {
    const std::vector<float> got = layer.y(r);
    for (std::int64_t i = 0; i < per_rank; ++i) {
      worst = std::max(worst, std::abs(got[sz(i)] - ref[sz(r * per_rank + i)]) / scale);
    }
  }
  return worst;
}

}  // namespace

MoeLayerRun run_moe_layer(const MoeLayerConfig& c, const TimingOptions& options) {
  validate_moe_routing(c.routing);
  if (c.ranks < 2 || c.hidden <= 0 || c.ffn <= 0 || c.routing.tokens % c.ranks != 0 ||
      c.routing.num_experts % c.ranks != 0) {
    throw std::invalid_argument("MoE layer: need >= 2 ranks dividing tokens and experts, positive widths");
  }
  MoeLayerRun out;
  double error = -1;
  if (options.verify) {
    error = verify(c, options.first_device);
    // Expert outputs are rounded to bf16 once (half an ulp, 2^-9 of each), then weighted in fp32
    // with weights summing to 1; an indexing mistake shows as an error of order 1.
    const double tolerance = 1.0 / 64;
    if (error > tolerance) {
      throw std::runtime_error("MoE layer differs from the CPU reference by " + std::to_string(error) +
                               ": not timing it");
    }
  }
  MoeLayer layer(c, options.first_device, nullptr, nullptr);
  layer.enqueue(Phase::kAll);  // every buffer holds data before the phases are timed alone
  CUDA_CHECK(cudaDeviceSynchronize());
  const MoeDispatchPlan plan = plan_moe_dispatch(c.routing);
  NcclGroup& g = layer.group();
  const auto time_phase = [&](Phase phase, const char* name, bool dispatch_bytes) {
    KernelRun run;
    run.operation = std::string("moe/") + name;
    run.verification_error = error;
    run.samples_s = detail::time_iterations(g.stream(0), g.device(0), options,
                                            [&](int) { layer.enqueue(phase); }, run);
    run.tokens_per_expert = plan.tokens_per_expert;
    run.attributes["bytes_per_rank"] = layer.bytes_per_rank(dispatch_bytes);
    return run;
  };
  out.dispatch = time_phase(Phase::kDispatch, "dispatch", true);
  out.expert_gemm = time_phase(Phase::kExpertGemm, "expert_gemm", true);
  out.combine = time_phase(Phase::kCombine, "combine", false);
  return out;
}

}  // namespace clustersim::kernels
