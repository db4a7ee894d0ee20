#pragma once
// CPU reference of attention numerics, the ones the harness's FA2-style GPU kernels
// (flash_attention.cu, paged_decode.cu) must reproduce: forward and backward with causal or full
// masks, grouped-query heads and variable sequence lengths, and decode over a paged KV cache
// with split-KV and a log-sum-exp combine. Always built; CUDA-free.
//
// Layout (FlashAttention's varlen layout): sequences are packed one after another.
//   q, out, dout, dq: [total_q, heads, head_dim]     k, v, dk, dv: [total_kv, kv_heads, head_dim]
//   lse: [total_q, heads], natural log; -inf for a row that sees no key.
// Causal masks are aligned bottom-right as in FlashAttention 2.1+: query i of a sequence with
// sq queries and skv keys sees key j when j <= i + skv - sq.
#include <cstdint>
#include <span>
#include <vector>

namespace clustersim::kernels {

struct AttentionProblem {
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;  // divides heads (GQA); == heads for MHA
  std::int64_t head_dim = 0;
  std::vector<std::int64_t> seq_q;   // per sequence
  std::vector<std::int64_t> seq_kv;  // per sequence, same count as seq_q
  bool causal = false;

  std::int64_t total_q() const;
  std::int64_t total_kv() const;
  float softmax_scale() const;  // 1 / sqrt(head_dim)
  // FLOPs as FlashAttention counts them: 4 sq skv d per head, visible pairs only when causal.
  double forward_flops() const;
  // Number of (query, key) pairs a head computes, mask applied.
  double visible_pairs() const;
};

// Throws std::invalid_argument naming the problem when a size is not positive, kv_heads does
// not divide heads, or the lists differ in length.
void validate_attention_problem(const AttentionProblem& problem);

struct AttentionForward {
  std::vector<float> out;
  std::vector<float> lse;
};

// Online softmax over key blocks of `block_kv` keys (the FA2 order of accumulation), in float.
// Throws std::invalid_argument on a bad problem or a span of the wrong length.
AttentionForward attention_forward_reference(const AttentionProblem& problem,
                                             std::span<const float> q, std::span<const float> k,
                                             std::span<const float> v, std::int64_t block_kv = 64);

struct AttentionGradients {
  std::vector<float> dq, dk, dv;
};

// Gradients of sum(out * dout) from the forward's out and lse (FA2's backward: P recomputed
// from lse, D = rowsum(dout * out)). dk and dv sum over the query heads sharing a KV head.
AttentionGradients attention_backward_reference(const AttentionProblem& problem,
                                                std::span<const float> q, std::span<const float> k,
                                                std::span<const float> v,
                                                std::span<const float> out,
                                                std::span<const float> dout,
                                                std::span<const float> lse);

// A paged KV cache: pages of page_size tokens, [num_pages, page_size, kv_heads, head_dim] for K
// and for V; sequence s's token t lives in page block_tables[s][t / page_size], slot
// t % page_size.
struct PagedKvCache {
  std::int64_t page_size = 0;
  std::int64_t kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t num_pages = 0;
  std::vector<float> k_pages, v_pages;
  std::vector<std::vector<std::int32_t>> block_tables;  // per sequence
  std::vector<std::int64_t> seq_lens;                   // per sequence

  std::int64_t page_elements() const { return page_size * kv_heads * head_dim; }
  // Bytes of K and V the sequences' tokens occupy at `element_bytes` per element.
  double kv_bytes(double element_bytes) const;
};

void validate_paged_kv_cache(const PagedKvCache& cache, std::int64_t heads);

// One new query token per sequence: q [batch, heads, head_dim] -> out [batch, heads, head_dim],
// lse [batch, heads]. Each sequence's keys are split into `num_splits` contiguous ranges (whole
// pages; empty ranges allowed); each range yields a partial output and its lse, and the partials
// are combined as out = sum_s exp(lse_s - lse) out_s with lse = log sum_s exp(lse_s).
AttentionForward paged_decode_reference(const PagedKvCache& cache, std::int64_t heads,
                                        std::span<const float> q, std::int64_t num_splits);

// Key range [begin, end) of split `split` of `num_splits` over seq_len keys in pages of
// page_size: whole pages, as evenly as possible. Shared by the GPU kernel and the reference.
struct KeyRange {
  std::int64_t begin = 0, end = 0;
};
KeyRange decode_split_range(std::int64_t seq_len, std::int64_t page_size, std::int64_t num_splits,
                            std::int64_t split);

}  // namespace clustersim::kernels
