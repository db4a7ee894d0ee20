#include "kernels/attention.hpp"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/attention_reference.hpp"
#include "kernels/cuda_timing.hpp"

namespace clustersim::kernels {

namespace {

using detail::DeviceMemory;

constexpr int kWarp = 32;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxPerLane = kMaxHeadDim / kWarp;  // head_dim elements each lane holds
constexpr int kWarps = 4;                         // per forward block
constexpr int kRowsPerWarp = 4;                   // query rows each warp carries
constexpr int kBlockRows = kWarps * kRowsPerWarp; // Br
constexpr int kBlockKeys = kWarp;                 // Bc: one score per lane
constexpr float kNegInf = -INFINITY;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ inline float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Last key (exclusive bound) query i of a sequence may see; FlashAttention's bottom-right mask.
__device__ inline std::int64_t visible_end(std::int64_t i, std::int64_t sq, std::int64_t skv, bool causal) {
  if (!causal) return skv;
  const std::int64_t end = i + skv - sq + 1;
  return end < 0 ? 0 : (end > skv ? skv : end);
}

struct Varlen {
  const std::int64_t* q_start;   // [batch + 1]
  const std::int64_t* kv_start;  // [batch + 1]
};

// Forward. Grid (query tiles, heads, batch); block kWarps warps; a warp owns kRowsPerWarp query
// rows, a lane owns head_dim / 32 columns of each. Key tiles of kBlockKeys keys are staged in
// shared memory (bf16, K then V); per tile, lane j computes score j of each row, then one
// rescale of the running output per row (FA2's online softmax).
__global__ void __launch_bounds__(kWarps * kWarp)
flash_forward_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                     const __nv_bfloat16* __restrict__ v, float* __restrict__ out,
                     float* __restrict__ lse, Varlen varlen, int heads, int kv_heads, int head_dim,
                     bool causal, float scale) {
  extern __shared__ __nv_bfloat16 tile[];  // [2][kBlockKeys][head_dim]
  __nv_bfloat16* k_tile = tile;
  __nv_bfloat16* v_tile = tile + kBlockKeys * head_dim;
  const int b = static_cast<int>(blockIdx.z);
  const int h = static_cast<int>(blockIdx.y);
  const int kvh = h / (heads / kv_heads);
  const std::int64_t q0 = varlen.q_start[b];
  const std::int64_t sq = varlen.q_start[b + 1] - q0;
  const std::int64_t kv0 = varlen.kv_start[b];
  const std::int64_t skv = varlen.kv_start[b + 1] - kv0;
  const std::int64_t first_row = static_cast<std::int64_t>(blockIdx.x) * kBlockRows;
  if (first_row >= sq) return;  // whole block: before any barrier
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int per_lane = head_dim / kWarp;

  float q_reg[kRowsPerWarp][kMaxPerLane];
  float acc[kRowsPerWarp][kMaxPerLane];
  float row_max[kRowsPerWarp], row_sum[kRowsPerWarp];
  std::int64_t row_end[kRowsPerWarp];
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const std::int64_t i = first_row + warp * kRowsPerWarp + r;
    row_max[r] = kNegInf;
    row_sum[r] = 0.0f;
    row_end[r] = i < sq ? visible_end(i, sq, skv, causal) : 0;
    for (int t = 0; t < kMaxPerLane; ++t) {
      acc[r][t] = 0.0f;
      q_reg[r][t] = 0.0f;
      if (t < per_lane && i < sq) {
        q_reg[r][t] = __bfloat162float(q[((q0 + i) * heads + h) * head_dim + t * kWarp + lane]);
      }
    }
  }
  // Keys any row of the block sees: up to the last row's bound.
  const std::int64_t last = min(first_row + kBlockRows, sq) - 1;
  const std::int64_t block_end = visible_end(last, sq, skv, causal);
  for (std::int64_t key0 = 0; key0 < block_end; key0 += kBlockKeys) {
    const int keys = block_end - key0 < kBlockKeys ? static_cast<int>(block_end - key0) : kBlockKeys;
    for (int e = static_cast<int>(threadIdx.x); e < kBlockKeys * head_dim; e += kWarps * kWarp) {
      const int j = e / head_dim;
      const int c = e % head_dim;
      __nv_bfloat16 kx = __float2bfloat16_rn(0.0f), vx = kx;
      if (j < keys) {
        const std::int64_t src = ((kv0 + key0 + j) * kv_heads + kvh) * head_dim + c;
        kx = k[src];
        vx = v[src];
      }
      k_tile[e] = kx;
      v_tile[e] = vx;
    }
    __syncthreads();
    for (int r = 0; r < kRowsPerWarp; ++r) {
      float my_score = kNegInf;  // lane j: score of key key0 + j
      for (int j = 0; j < keys; ++j) {
        float partial = 0.0f;
        for (int t = 0; t < kMaxPerLane; ++t) {
          if (t < per_lane) partial += q_reg[r][t] * __bfloat162float(k_tile[j * head_dim + t * kWarp + lane]);
        }
        const float s = warp_sum(partial) * scale;
        if (lane == j && key0 + j < row_end[r]) my_score = s;
      }
      const float tile_max = warp_max(my_score);
      if (tile_max == kNegInf) continue;  // row sees no key of this tile (uniform over the warp)
      const float new_max = fmaxf(row_max[r], tile_max);
      const float correction = row_max[r] == kNegInf ? 0.0f : __expf(row_max[r] - new_max);
      const float p = my_score == kNegInf ? 0.0f : __expf(my_score - new_max);
      row_sum[r] = row_sum[r] * correction + warp_sum(p);
      for (int t = 0; t < kMaxPerLane; ++t) acc[r][t] *= correction;
      for (int j = 0; j < keys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        for (int t = 0; t < kMaxPerLane; ++t) {
          if (t < per_lane) acc[r][t] += pj * __bfloat162float(v_tile[j * head_dim + t * kWarp + lane]);
        }
      }
      row_max[r] = new_max;
    }
    __syncthreads();
  }
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const std::int64_t i = first_row + warp * kRowsPerWarp + r;
    if (i >= sq) continue;
    const std::int64_t row = (q0 + i) * heads + h;
    const float inv = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
    for (int t = 0; t < per_lane; ++t) out[row * head_dim + t * kWarp + lane] = acc[r][t] * inv;
    if (lane == 0) lse[row] = row_sum[r] > 0.0f ? row_max[r] + logf(row_sum[r]) : kNegInf;
  }
}

// Backward step 1: delta[row] = sum_c dout[row, c] out[row, c]. One warp per (token, head) row.
__global__ void attention_delta_kernel(const float* __restrict__ out, const __nv_bfloat16* __restrict__ dout,
                                       float* __restrict__ delta, std::int64_t rows, int head_dim) {
  const std::int64_t row = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  if (row >= rows) return;  // whole warp
  float sum = 0.0f;
  for (int c = lane; c < head_dim; c += kWarp) {
    sum += out[row * head_dim + c] * __bfloat162float(dout[row * head_dim + c]);
  }
  sum = warp_sum(sum);
  if (lane == 0) delta[row] = sum;
}

// Backward step 2: dq for one query row per warp, keys read from global memory (unfused,
// simple): p = exp(s - lse), ds = p (dout . v - delta), dq = scale sum_j ds_j k_j.
__global__ void attention_dq_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                                    const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
                                    const float* __restrict__ lse, const float* __restrict__ delta,
                                    float* __restrict__ dq, Varlen varlen, int batch, int heads,
                                    int kv_heads, int head_dim, bool causal, float scale) {
  const std::int64_t row = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const std::int64_t token = row / heads;
  const int h = static_cast<int>(row % heads);
  if (token >= varlen.q_start[batch]) return;  // whole warp
  int b = 0;
  while (varlen.q_start[b + 1] <= token) ++b;
  const std::int64_t i = token - varlen.q_start[b];
  const std::int64_t sq = varlen.q_start[b + 1] - varlen.q_start[b];
  const std::int64_t kv0 = varlen.kv_start[b];
  const std::int64_t end = visible_end(i, sq, varlen.kv_start[b + 1] - kv0, causal);
  const int kvh = h / (heads / kv_heads);
  const int per_lane = head_dim / kWarp;
  float q_reg[kMaxPerLane], do_reg[kMaxPerLane], acc[kMaxPerLane];
  for (int t = 0; t < kMaxPerLane; ++t) {
    const bool in = t < per_lane;
    q_reg[t] = in ? __bfloat162float(q[row * head_dim + t * kWarp + lane]) : 0.0f;
    do_reg[t] = in ? __bfloat162float(dout[row * head_dim + t * kWarp + lane]) : 0.0f;
    acc[t] = 0.0f;
  }
  const float row_lse = lse[row];
  const float row_delta = delta[row];
  for (std::int64_t j = 0; j < end; ++j) {
    const std::int64_t base = ((kv0 + j) * kv_heads + kvh) * head_dim;
    float s = 0.0f, dp = 0.0f;
    for (int t = 0; t < per_lane; ++t) {
      s += q_reg[t] * __bfloat162float(k[base + t * kWarp + lane]);
      dp += do_reg[t] * __bfloat162float(v[base + t * kWarp + lane]);
    }
    const float p = __expf(warp_sum(s) * scale - row_lse);
    const float ds = p * (warp_sum(dp) - row_delta);
    for (int t = 0; t < per_lane; ++t) acc[t] += ds * __bfloat162float(k[base + t * kWarp + lane]);
  }
  for (int t = 0; t < per_lane; ++t) dq[row * head_dim + t * kWarp + lane] = acc[t] * scale;
}

// Backward step 3: dk and dv for one (key token, kv head) per warp, summed over the query heads
// of the group and the queries that see the key.
__global__ void attention_dkdv_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                                      const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
                                      const float* __restrict__ lse, const float* __restrict__ delta,
                                      float* __restrict__ dk, float* __restrict__ dv, Varlen varlen,
                                      int batch, int heads, int kv_heads, int head_dim, bool causal,
                                      float scale) {
  const std::int64_t row = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const std::int64_t token = row / kv_heads;
  const int kvh = static_cast<int>(row % kv_heads);
  if (token >= varlen.kv_start[batch]) return;  // whole warp
  int b = 0;
  while (varlen.kv_start[b + 1] <= token) ++b;
  const std::int64_t j = token - varlen.kv_start[b];
  const std::int64_t q0 = varlen.q_start[b];
  const std::int64_t sq = varlen.q_start[b + 1] - q0;
  const std::int64_t skv = varlen.kv_start[b + 1] - varlen.kv_start[b];
  // Query i sees key j when j < visible_end(i): i >= j - skv + sq when causal.
  std::int64_t first = causal ? j - skv + sq : 0;
  if (first < 0) first = 0;
  const int group = heads / kv_heads;
  const int per_lane = head_dim / kWarp;
  float k_reg[kMaxPerLane], v_reg[kMaxPerLane], dk_acc[kMaxPerLane], dv_acc[kMaxPerLane];
  for (int t = 0; t < kMaxPerLane; ++t) {
    const bool in = t < per_lane;
    k_reg[t] = in ? __bfloat162float(k[row * head_dim + t * kWarp + lane]) : 0.0f;
    v_reg[t] = in ? __bfloat162float(v[row * head_dim + t * kWarp + lane]) : 0.0f;
    dk_acc[t] = 0.0f;
    dv_acc[t] = 0.0f;
  }
  for (int g = 0; g < group; ++g) {
    const int h = kvh * group + g;
    for (std::int64_t i = first; i < sq; ++i) {
      const std::int64_t qrow = (q0 + i) * heads + h;
      float s = 0.0f, dp = 0.0f;
      for (int t = 0; t < per_lane; ++t) {
        s += __bfloat162float(q[qrow * head_dim + t * kWarp + lane]) * k_reg[t];
        dp += __bfloat162float(dout[qrow * head_dim + t * kWarp + lane]) * v_reg[t];
      }
      const float p = __expf(warp_sum(s) * scale - lse[qrow]);
      const float ds = p * (warp_sum(dp) - delta[qrow]);
      for (int t = 0; t < per_lane; ++t) {
        dv_acc[t] += p * __bfloat162float(dout[qrow * head_dim + t * kWarp + lane]);
        dk_acc[t] += ds * __bfloat162float(q[qrow * head_dim + t * kWarp + lane]);
      }
    }
  }
  for (int t = 0; t < per_lane; ++t) {
    dk[row * head_dim + t * kWarp + lane] = dk_acc[t] * scale;
    dv[row * head_dim + t * kWarp + lane] = dv_acc[t];
  }
}

// Decode, split phase: one warp per (split, head, sequence) folds its key range (whole pages,
// decode_split_range's formula) with an online softmax per key. partial_out [batch, heads,
// splits, head_dim], partial_lse [batch, heads, splits] (-inf for an empty range).
__global__ void paged_decode_split_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k_pages,
                                          const __nv_bfloat16* __restrict__ v_pages,
                                          const std::int32_t* __restrict__ block_tables, int max_pages,
                                          const std::int64_t* __restrict__ seq_lens, int page_size,
                                          int heads, int kv_heads, int head_dim, int splits, float scale,
                                          float* __restrict__ partial_out, float* __restrict__ partial_lse) {
  const int split = static_cast<int>(blockIdx.x);
  const int h = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int lane = static_cast<int>(threadIdx.x);
  const int kvh = h / (heads / kv_heads);
  const int per_lane = head_dim / kWarp;
  const std::int64_t len = seq_lens[b];
  const std::int64_t pages = (len + page_size - 1) / page_size;
  const std::int64_t per_split = (pages + splits - 1) / splits;
  const std::int64_t begin = min(len, split * per_split * page_size);
  const std::int64_t end = min(len, (split + 1) * per_split * page_size);
  float q_reg[kMaxPerLane], acc[kMaxPerLane];
  for (int t = 0; t < kMaxPerLane; ++t) {
    q_reg[t] = t < per_lane ? __bfloat162float(q[(static_cast<std::int64_t>(b) * heads + h) * head_dim + t * kWarp + lane]) : 0.0f;
    acc[t] = 0.0f;
  }
  float row_max = kNegInf, row_sum = 0.0f;
  for (std::int64_t tok = begin; tok < end; ++tok) {
    const std::int64_t page = block_tables[static_cast<std::int64_t>(b) * max_pages + tok / page_size];
    const std::int64_t base = ((page * page_size + tok % page_size) * kv_heads + kvh) * head_dim;
    float s = 0.0f;
    for (int t = 0; t < per_lane; ++t) s += q_reg[t] * __bfloat162float(k_pages[base + t * kWarp + lane]);
    s = warp_sum(s) * scale;
    const float new_max = fmaxf(row_max, s);
    const float correction = row_max == kNegInf ? 0.0f : __expf(row_max - new_max);
    const float p = __expf(s - new_max);
    row_sum = row_sum * correction + p;
    for (int t = 0; t < per_lane; ++t) acc[t] = acc[t] * correction + p * __bfloat162float(v_pages[base + t * kWarp + lane]);
    row_max = new_max;
  }
  const std::int64_t slot = (static_cast<std::int64_t>(b) * heads + h) * splits + split;
  const float inv = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
  for (int t = 0; t < per_lane; ++t) partial_out[slot * head_dim + t * kWarp + lane] = acc[t] * inv;
  if (lane == 0) partial_lse[slot] = row_sum > 0.0f ? row_max + logf(row_sum) : kNegInf;
}

// Decode, combine phase: one warp per (head, sequence); lse = log sum_s exp(lse_s), out =
// sum_s exp(lse_s - lse) out_s.
__global__ void paged_decode_combine_kernel(const float* __restrict__ partial_out, const float* __restrict__ partial_lse,
                                            int splits, int head_dim, float* __restrict__ out,
                                            float* __restrict__ lse) {
  const std::int64_t row = blockIdx.x;  // b * heads + h
  const int lane = static_cast<int>(threadIdx.x);
  float max_lse = kNegInf;
  for (int s = 0; s < splits; ++s) max_lse = fmaxf(max_lse, partial_lse[row * splits + s]);
  float total = 0.0f;
  if (max_lse != kNegInf) {
    for (int s = 0; s < splits; ++s) total += __expf(partial_lse[row * splits + s] - max_lse);
  }
  const float row_lse = total > 0.0f ? max_lse + logf(total) : kNegInf;
  for (int c = lane; c < head_dim; c += kWarp) {
    float value = 0.0f;
    if (row_lse != kNegInf) {
      for (int s = 0; s < splits; ++s) {
        const float w = __expf(partial_lse[row * splits + s] - row_lse);
        value += w * partial_out[(row * splits + s) * head_dim + c];
      }
    }
    out[row * head_dim + c] = value;
  }
  if (lane == 0) lse[row] = row_lse;
}

// ---- host side ----

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

DeviceMemory upload(const void* data, std::size_t bytes) {
  DeviceMemory m = detail::device_malloc(bytes);
  CUDA_CHECK(cudaMemcpy(m.get(), data, bytes, cudaMemcpyHostToDevice));
  return m;
}

std::vector<float> download_f32(const DeviceMemory& m, std::int64_t count) {
  std::vector<float> out(sz(count));
  CUDA_CHECK(cudaMemcpy(out.data(), m.get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<std::int64_t> prefix(const std::vector<std::int64_t>& lens) {
  std::vector<std::int64_t> out{0};
  for (std::int64_t l : lens) out.push_back(out.back() + l);
  return out;
}

double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    const double r = ref[i];
    const double g = got[i];
    if (std::isinf(r) || std::isinf(g)) {  // lse of a row that saw no key
      if (!(std::isinf(r) && std::isinf(g) && (r < 0) == (g < 0))) worst = std::max(worst, 1e30);
      continue;
    }
    worst = std::max(worst, std::abs(g - r) / std::max(1.0, std::abs(r)));
  }
  return worst;
}

// Device buffers of a (varlen) forward/backward problem; inputs from fill_bf16 with seeds 6..9.
class DenseAttention {
 public:
  explicit DenseAttention(const AttentionProblem& p) : p_(p) {
    validate_attention_problem(p);
    const std::vector<std::int64_t> qs = prefix(p.seq_q), ks = prefix(p.seq_kv);
    q_start_ = upload(qs.data(), qs.size() * sizeof(std::int64_t));
    kv_start_ = upload(ks.data(), ks.size() * sizeof(std::int64_t));
    const std::int64_t q_elems = p.total_q() * p.heads * p.head_dim;
    const std::int64_t kv_elems = p.total_kv() * p.kv_heads * p.head_dim;
    q_ = alloc_bf16(q_elems, 6);
    k_ = alloc_bf16(kv_elems, 7);
    v_ = alloc_bf16(kv_elems, 8);
    dout_ = alloc_bf16(q_elems, 9);
    out_ = detail::device_malloc(sz(q_elems) * sizeof(float));
    lse_ = detail::device_malloc(sz(p.total_q() * p.heads) * sizeof(float));
    delta_ = detail::device_malloc(sz(p.total_q() * p.heads) * sizeof(float));
    dq_ = detail::device_malloc(sz(q_elems) * sizeof(float));
    dk_ = detail::device_malloc(sz(kv_elems) * sizeof(float));
    dv_ = detail::device_malloc(sz(kv_elems) * sizeof(float));
    CUDA_CHECK(cudaDeviceSynchronize());
  }

  void forward(cudaStream_t stream) const {
    std::int64_t max_q = 0;
    for (std::int64_t s : p_.seq_q) max_q = std::max(max_q, s);
    const dim3 grid(static_cast<unsigned>((max_q + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(p_.heads),
                    static_cast<unsigned>(p_.seq_q.size()));
    const std::size_t shared = 2 * sz(kBlockKeys * p_.head_dim) * sizeof(__nv_bfloat16);
    flash_forward_kernel<<<grid, kWarps * kWarp, shared, stream>>>(
        bf16(q_), bf16(k_), bf16(v_), f32(out_), f32(lse_), varlen(), static_cast<int>(p_.heads),
        static_cast<int>(p_.kv_heads), static_cast<int>(p_.head_dim), p_.causal, p_.softmax_scale());
    CUDA_CHECK(cudaGetLastError());
  }

  void backward(cudaStream_t stream) const {
    constexpr int kThreads = 128;  // 4 warps, one row each
    const std::int64_t q_rows = p_.total_q() * p_.heads;
    const std::int64_t kv_rows = p_.total_kv() * p_.kv_heads;
    const auto blocks = [](std::int64_t rows) {
      return static_cast<unsigned>((rows * kWarp + kThreads - 1) / kThreads);
    };
    const int batch = static_cast<int>(p_.seq_q.size());
    const int heads = static_cast<int>(p_.heads), kv_heads = static_cast<int>(p_.kv_heads);
    const int d = static_cast<int>(p_.head_dim);
    attention_delta_kernel<<<blocks(q_rows), kThreads, 0, stream>>>(f32(out_), bf16(dout_), f32(delta_), q_rows, d);
    CUDA_CHECK(cudaGetLastError());
    attention_dq_kernel<<<blocks(q_rows), kThreads, 0, stream>>>(
        bf16(q_), bf16(k_), bf16(v_), bf16(dout_), f32(lse_), f32(delta_), f32(dq_), varlen(), batch, heads,
        kv_heads, d, p_.causal, p_.softmax_scale());
    CUDA_CHECK(cudaGetLastError());
    attention_dkdv_kernel<<<blocks(kv_rows), kThreads, 0, stream>>>(
        bf16(q_), bf16(k_), bf16(v_), bf16(dout_), f32(lse_), f32(delta_), f32(dk_), f32(dv_), varlen(), batch,
        heads, kv_heads, d, p_.causal, p_.softmax_scale());
    CUDA_CHECK(cudaGetLastError());
  }

  // Forward (and backward) once, compared with the CPU reference on the same inputs.
  double verify(bool backward) const {
    forward(nullptr);
    if (backward) backward_sync();
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::int64_t q_elems = p_.total_q() * p_.heads * p_.head_dim;
    const std::int64_t kv_elems = p_.total_kv() * p_.kv_heads * p_.head_dim;
    const auto q = detail::bf16_fill_values(q_elems, 6), k = detail::bf16_fill_values(kv_elems, 7),
               v = detail::bf16_fill_values(kv_elems, 8), dout = detail::bf16_fill_values(q_elems, 9);
    const AttentionForward ref = attention_forward_reference(p_, q, k, v);
    double worst = std::max(max_rel_error(download_f32(out_, q_elems), ref.out),
                            max_rel_error(download_f32(lse_, p_.total_q() * p_.heads), ref.lse));
    if (backward) {
      const AttentionGradients g = attention_backward_reference(p_, q, k, v, ref.out, dout, ref.lse);
      worst = std::max({worst, max_rel_error(download_f32(dq_, q_elems), g.dq),
                        max_rel_error(download_f32(dk_, kv_elems), g.dk),
                        max_rel_error(download_f32(dv_, kv_elems), g.dv)});
    }
    return worst;
  }

 private:
  void backward_sync() const { backward(nullptr); }
  static const __nv_bfloat16* bf16(const DeviceMemory& m) { return static_cast<const __nv_bfloat16*>(m.get()); }
  static float* f32(const DeviceMemory& m) { return static_cast<float*>(m.get()); }
  Varlen varlen() const {
    return {static_cast<const std::int64_t*>(q_start_.get()), static_cast<const std::int64_t*>(kv_start_.get())};
  }
  static DeviceMemory alloc_bf16(std::int64_t count, std::uint64_t seed) {
    DeviceMemory m = detail::device_malloc(sz(count) * sizeof(__nv_bfloat16));
    detail::fill_bf16(m.get(), count, seed, nullptr);
    return m;
  }

  AttentionProblem p_;
  DeviceMemory q_start_, kv_start_, q_, k_, v_, dout_, out_, lse_, delta_, dq_, dk_, dv_;
};

// Paged decode buffers: pages dealt in reverse as in the CPU backend; seeds 3 (K), 4 (V), 5 (q).
class PagedDecode {
 public:
  PagedDecode(const AttentionConfig& c, const std::vector<std::int64_t>& seq_lens)
      : c_(c), batch_(static_cast<std::int64_t>(seq_lens.size())) {
    for (std::int64_t len : seq_lens) max_pages_ = std::max(max_pages_, (len + c.page_size - 1) / c.page_size);
    cache_.page_size = c.page_size;
    cache_.kv_heads = c.kv_heads;
    cache_.head_dim = c.head_dim;
    cache_.num_pages = batch_ * max_pages_;
    std::vector<std::int32_t> table(sz(batch_ * max_pages_), 0);
    for (std::int64_t b = 0; b < batch_; ++b) {
      std::vector<std::int32_t> row;
      for (std::int64_t p = 0; p < max_pages_; ++p) {
        const auto page = static_cast<std::int32_t>(cache_.num_pages - 1 - (p * batch_ + b));
        table[sz(b * max_pages_ + p)] = page;
        if (p * c.page_size < seq_lens[sz(b)]) row.push_back(page);
      }
      cache_.block_tables.push_back(row);
      cache_.seq_lens.push_back(seq_lens[sz(b)]);
    }
    const std::int64_t page_elems = cache_.num_pages * cache_.page_elements();
    k_ = detail::device_malloc(sz(page_elems) * 2);
    v_ = detail::device_malloc(sz(page_elems) * 2);
    q_ = detail::device_malloc(sz(batch_ * c.heads * c.head_dim) * 2);
    detail::fill_bf16(k_.get(), page_elems, 3, nullptr);
    detail::fill_bf16(v_.get(), page_elems, 4, nullptr);
    detail::fill_bf16(q_.get(), batch_ * c.heads * c.head_dim, 5, nullptr);
    table_ = upload(table.data(), table.size() * sizeof(std::int32_t));
    lens_ = upload(seq_lens.data(), seq_lens.size() * sizeof(std::int64_t));
    const std::int64_t rows = batch_ * c.heads;
    partial_out_ = detail::device_malloc(sz(rows * c.num_splits * c.head_dim) * sizeof(float));
    partial_lse_ = detail::device_malloc(sz(rows * c.num_splits) * sizeof(float));
    out_ = detail::device_malloc(sz(rows * c.head_dim) * sizeof(float));
    lse_ = detail::device_malloc(sz(rows) * sizeof(float));
    CUDA_CHECK(cudaDeviceSynchronize());
  }

  void run(cudaStream_t stream) const {
    const dim3 grid(static_cast<unsigned>(c_.num_splits), static_cast<unsigned>(c_.heads), static_cast<unsigned>(batch_));
    paged_decode_split_kernel<<<grid, kWarp, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(q_.get()), static_cast<const __nv_bfloat16*>(k_.get()),
        static_cast<const __nv_bfloat16*>(v_.get()), static_cast<const std::int32_t*>(table_.get()),
        static_cast<int>(max_pages_), static_cast<const std::int64_t*>(lens_.get()), static_cast<int>(c_.page_size),
        static_cast<int>(c_.heads), static_cast<int>(c_.kv_heads), static_cast<int>(c_.head_dim),
        static_cast<int>(c_.num_splits), 1.0f / std::sqrt(static_cast<float>(c_.head_dim)),
        static_cast<float*>(partial_out_.get()), static_cast<float*>(partial_lse_.get()));
    CUDA_CHECK(cudaGetLastError());
    paged_decode_combine_kernel<<<static_cast<unsigned>(batch_ * c_.heads), kWarp, 0, stream>>>(
        static_cast<const float*>(partial_out_.get()), static_cast<const float*>(partial_lse_.get()),
        static_cast<int>(c_.num_splits), static_cast<int>(c_.head_dim), static_cast<float*>(out_.get()),
        static_cast<float*>(lse_.get()));
    CUDA_CHECK(cudaGetLastError());
  }

  double verify() {
    run(nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::int64_t page_elems = cache_.num_pages * cache_.page_elements();
    cache_.k_pages = detail::bf16_fill_values(page_elems, 3);
    cache_.v_pages = detail::bf16_fill_values(page_elems, 4);
    const auto q = detail::bf16_fill_values(batch_ * c_.heads * c_.head_dim, 5);
    const AttentionForward ref = paged_decode_reference(cache_, c_.heads, q, c_.num_splits);
    return std::max(max_rel_error(download_f32(out_, batch_ * c_.heads * c_.head_dim), ref.out),
                    max_rel_error(download_f32(lse_, batch_ * c_.heads), ref.lse));
  }

 private:
  AttentionConfig c_;
  std::int64_t batch_;
  std::int64_t max_pages_ = 0;
  PagedKvCache cache_;
  DeviceMemory k_, v_, q_, table_, lens_, partial_out_, partial_lse_, out_, lse_;
};

AttentionProblem problem_of(const AttentionConfig& c, std::vector<std::int64_t> seq_q,
                            std::vector<std::int64_t> seq_kv) {
  AttentionProblem p;
  p.heads = c.heads;
  p.kv_heads = c.kv_heads;
  p.head_dim = c.head_dim;
  p.causal = c.causal;
  p.seq_q = std::move(seq_q);
  p.seq_kv = std::move(seq_kv);
  return p;
}

// fp32 math on exact bf16 inputs; the reference differs only in summation order and exp.
constexpr double kTolerance = 2e-3;

}  // namespace

KernelRun run_attention(const AttentionConfig& c, const TimingOptions& options) {
  if (c.head_dim <= 0 || c.head_dim % kWarp != 0 || c.head_dim > kMaxHeadDim || c.heads <= 0 ||
      c.kv_heads <= 0 || c.heads % c.kv_heads != 0 || c.batch <= 0 || c.seq_q <= 0 || c.seq_kv <= 0 ||
      (c.pass == "decode" && (c.page_size <= 0 || c.num_splits <= 0))) {
    throw std::invalid_argument("attention: need head_dim a multiple of 32 up to 256, kv_heads dividing "
                                "heads, positive sizes (decode: page size and splits)");
  }
  if (c.pass != "forward" && c.pass != "backward" && c.pass != "decode") {
    throw std::invalid_argument("attention: unknown pass '" + c.pass + "'");
  }
  CUDA_CHECK(cudaSetDevice(options.first_device));
  KernelRun run;
  run.operation = "attention/" + c.pass;
  if (options.verify) {
    // Awkward lengths: 1, 63, 65 (partial tiles), fewer queries than keys (bottom-right causal).
    if (c.pass == "decode") {
      AttentionConfig small = c;
      small.page_size = std::min<std::int64_t>(c.page_size, 16);
      small.num_splits = std::max<std::int64_t>(c.num_splits, 3);
      PagedDecode decode(small, {1, 63, 65, 257});
      run.verification_error = decode.verify();
    } else {
      const DenseAttention dense(problem_of(c, {1, 63, 65, 40}, {1, 63, 65, 97}));
      run.verification_error = dense.verify(c.pass == "backward");
    }
    if (run.verification_error > kTolerance) {
      throw std::runtime_error(run.operation + " differs from the CPU reference by " +
                               std::to_string(run.verification_error) + ": not timing it");
    }
  }
  const detail::OwnedStream stream = detail::make_stream();
  if (c.pass == "decode") {
    const PagedDecode decode(c, std::vector<std::int64_t>(sz(c.batch), c.seq_kv));
    run.samples_s = detail::time_iterations(stream.get(), options.first_device, options,
                                            [&](int) { decode.run(stream.get()); }, run);
  } else {
    const DenseAttention dense(problem_of(c, std::vector<std::int64_t>(sz(c.batch), c.seq_q),
                                          std::vector<std::int64_t>(sz(c.batch), c.seq_kv)));
    dense.forward(stream.get());  // the backward needs out and lse
    CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    const bool backward = c.pass == "backward";
    run.samples_s = detail::time_iterations(stream.get(), options.first_device, options, [&](int) {
      if (backward) {
        dense.backward(stream.get());
      } else {
        dense.forward(stream.get());
      }
    }, run);
  }
  run.attributes["probe_not_fa3"] = 1;
  return run;
}

}  // namespace clustersim::kernels
