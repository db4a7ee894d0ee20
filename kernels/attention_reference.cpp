#include "kernels/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

namespace clustersim::kernels {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::size_t idx(std::int64_t value) { return static_cast<std::size_t>(value); }

void check_length(const char* what, std::size_t actual, std::int64_t expected) {
  if (actual != idx(expected)) {
    throw std::invalid_argument(std::string("attention reference: ") + what + " has " +
                                std::to_string(actual) + " elements, expected " +
                                std::to_string(expected));
  }
}

// Validates the problem and the lengths of q, k and v.
void check_qkv(const AttentionProblem& p, std::span<const float> q, std::span<const float> k,
               std::span<const float> v) {
  validate_attention_problem(p);
  check_length("q", q.size(), p.total_q() * p.heads * p.head_dim);
  check_length("k", k.size(), p.total_kv() * p.kv_heads * p.head_dim);
  check_length("v", v.size(), p.total_kv() * p.kv_heads * p.head_dim);
}

// First key a query row may see is 0; the last is row + skv - sq when causal (may be < 0).
std::int64_t visible_keys(std::int64_t row, std::int64_t sq, std::int64_t skv, bool causal) {
  if (!causal) return skv;
  return std::clamp<std::int64_t>(row + skv - sq + 1, 0, skv);
}

float dot(const float* a, const float* b, std::int64_t n) {
  float sum = 0;
  for (std::int64_t c = 0; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

// Online-softmax state of one query row: running max, running denominator, unnormalised output.
struct RowState {
  float max = kNegInf;
  float sum = 0;
  std::vector<float> acc;
};

// Folds keys [begin, end) into `state`. k and v point at key 0 of the sequence and kv head;
// consecutive keys are `stride` floats apart.
void fold_keys(RowState& state, const float* q_row, const float* k, const float* v,
               std::int64_t stride, std::int64_t d, float scale, std::int64_t begin,
               std::int64_t end, std::vector<float>& scores) {
  if (begin >= end) return;
  scores.resize(idx(end - begin));
  float block_max = kNegInf;
  for (std::int64_t j = begin; j < end; ++j) {
    const float s = dot(q_row, k + j * stride, d) * scale;
    scores[idx(j - begin)] = s;
    block_max = std::max(block_max, s);
  }
  const float new_max = std::max(state.max, block_max);
  const float correction = state.max == kNegInf ? 0.0f : std::exp(state.max - new_max);
  state.sum *= correction;
  for (float& a : state.acc) a *= correction;
  for (std::int64_t j = begin; j < end; ++j) {
    const float p = std::exp(scores[idx(j - begin)] - new_max);
    state.sum += p;
    const float* v_row = v + j * stride;
    for (std::int64_t c = 0; c < d; ++c) state.acc[idx(c)] += p * v_row[c];
  }
  state.max = new_max;
}

// Writes the normalised output and lse of a finished row (zeros and -inf when it saw no key).
void finish_row(const RowState& state, float* out_row, float* lse, std::int64_t d) {
  if (state.sum == 0) {
    std::fill(out_row, out_row + d, 0.0f);
    *lse = kNegInf;
    return;
  }
  for (std::int64_t c = 0; c < d; ++c) out_row[c] = state.acc[idx(c)] / state.sum;
  *lse = state.max + std::log(state.sum);
}

}  // namespace

std::int64_t AttentionProblem::total_q() const {
  std::int64_t total = 0;
  for (std::int64_t s : seq_q) total += s;
  return total;
}

std::int64_t AttentionProblem::total_kv() const {
  std::int64_t total = 0;
  for (std::int64_t s : seq_kv) total += s;
  return total;
}

float AttentionProblem::softmax_scale() const {
  return 1.0f / std::sqrt(static_cast<float>(head_dim));
}

double AttentionProblem::visible_pairs() const {
  double pairs = 0;
  for (std::size_t s = 0; s < seq_q.size(); ++s) {
    for (std::int64_t i = 0; i < seq_q[s]; ++i) {
      pairs += static_cast<double>(visible_keys(i, seq_q[s], seq_kv[s], causal));
    }
  }
  return pairs;
}

double AttentionProblem::forward_flops() const {
  return 4.0 * static_cast<double>(heads) * static_cast<double>(head_dim) * visible_pairs();
}

void validate_attention_problem(const AttentionProblem& p) {
  if (p.heads <= 0 || p.kv_heads <= 0 || p.head_dim <= 0 || p.heads % p.kv_heads != 0) {
    throw std::invalid_argument("attention problem: need heads, kv_heads, head_dim > 0 and "
                                "kv_heads dividing heads (got " + std::to_string(p.heads) + ", " +
                                std::to_string(p.kv_heads) + ", " + std::to_string(p.head_dim) +
                                ")");
  }
  if (p.seq_q.empty() || p.seq_q.size() != p.seq_kv.size()) {
    throw std::invalid_argument("attention problem: seq_q and seq_kv need the same, non-zero, "
                                "number of sequences");
  }
  for (std::size_t s = 0; s < p.seq_q.size(); ++s) {
    if (p.seq_q[s] <= 0 || p.seq_kv[s] <= 0) {
      throw std::invalid_argument("attention problem: sequence " + std::to_string(s) +
                                  " has a non-positive length");
    }
  }
}

AttentionForward attention_forward_reference(const AttentionProblem& p, std::span<const float> q,
                                             std::span<const float> k, std::span<const float> v,
                                             std::int64_t block_kv) {
  check_qkv(p, q, k, v);
  if (block_kv <= 0) throw std::invalid_argument("attention reference: block_kv must be > 0");
  const std::int64_t d = p.head_dim;
  AttentionForward result;
  result.out.assign(q.size(), 0.0f);
  result.lse.assign(idx(p.total_q() * p.heads), kNegInf);
  const float scale = p.softmax_scale();
  const std::int64_t group = p.heads / p.kv_heads;
  const std::int64_t kv_stride = p.kv_heads * d;
  std::vector<float> scores;
  RowState state;
  std::int64_t q_start = 0;
  std::int64_t kv_start = 0;
  for (std::size_t s = 0; s < p.seq_q.size(); ++s) {
    const std::int64_t sq = p.seq_q[s];
    const std::int64_t skv = p.seq_kv[s];
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kvh = h / group;
      const float* k_seq = k.data() + kv_start * kv_stride + kvh * d;
      const float* v_seq = v.data() + kv_start * kv_stride + kvh * d;
      for (std::int64_t i = 0; i < sq; ++i) {
        const std::int64_t row = (q_start + i) * p.heads + h;
        const float* q_row = q.data() + row * d;
        state.max = kNegInf;
        state.sum = 0;
        state.acc.assign(idx(d), 0.0f);
        const std::int64_t visible = visible_keys(i, sq, skv, p.causal);
        for (std::int64_t begin = 0; begin < visible; begin += block_kv) {
          fold_keys(state, q_row, k_seq, v_seq, kv_stride, d, scale, begin,
                    std::min(begin + block_kv, visible), scores);
        }
        finish_row(state, result.out.data() + row * d, result.lse.data() + row, d);
      }
    }
    q_start += sq;
    kv_start += skv;
  }
  return result;
}

AttentionGradients attention_backward_reference(const AttentionProblem& p,
                                                std::span<const float> q, std::span<const float> k,
                                                std::span<const float> v,
                                                std::span<const float> out,
                                                std::span<const float> dout,
                                                std::span<const float> lse) {
  check_qkv(p, q, k, v);
  const std::int64_t d = p.head_dim;
  check_length("out", out.size(), p.total_q() * p.heads * d);
  check_length("dout", dout.size(), p.total_q() * p.heads * d);
  check_length("lse", lse.size(), p.total_q() * p.heads);
  AttentionGradients g;
  g.dq.assign(q.size(), 0.0f);
  g.dk.assign(k.size(), 0.0f);
  g.dv.assign(v.size(), 0.0f);
  const float scale = p.softmax_scale();
  const std::int64_t group = p.heads / p.kv_heads;
  const std::int64_t kv_stride = p.kv_heads * d;
  std::int64_t q_start = 0;
  std::int64_t kv_start = 0;
  for (std::size_t s = 0; s < p.seq_q.size(); ++s) {
    const std::int64_t sq = p.seq_q[s];
    const std::int64_t skv = p.seq_kv[s];
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kv_offset = kv_start * kv_stride + (h / group) * d;
      for (std::int64_t i = 0; i < sq; ++i) {
        const std::int64_t row = (q_start + i) * p.heads + h;
        const float row_lse = lse[idx(row)];
        if (row_lse == kNegInf) continue;  // saw no key: no gradient
        const float* q_row = q.data() + row * d;
        const float* do_row = dout.data() + row * d;
        const float delta = dot(do_row, out.data() + row * d, d);
        float* dq_row = g.dq.data() + row * d;
        const std::int64_t visible = visible_keys(i, sq, skv, p.causal);
        for (std::int64_t j = 0; j < visible; ++j) {
          const std::int64_t key = kv_offset + j * kv_stride;
          const float prob = std::exp(dot(q_row, k.data() + key, d) * scale - row_lse);
          const float dp = dot(do_row, v.data() + key, d);
          const float ds = prob * (dp - delta) * scale;
          for (std::int64_t c = 0; c < d; ++c) {
            g.dv[idx(key + c)] += prob * do_row[c];
            dq_row[c] += ds * k[idx(key + c)];
            g.dk[idx(key + c)] += ds * q_row[c];
          }
        }
      }
    }
    q_start += sq;
    kv_start += skv;
  }
  return g;
}

double PagedKvCache::kv_bytes(double element_bytes) const {
  double tokens = 0;
  for (std::int64_t len : seq_lens) tokens += static_cast<double>(len);
  return 2.0 * tokens * static_cast<double>(kv_heads * head_dim) * element_bytes;
}

void validate_paged_kv_cache(const PagedKvCache& c, std::int64_t heads) {
  if (c.page_size <= 0 || c.kv_heads <= 0 || c.head_dim <= 0 || c.num_pages <= 0 || heads <= 0 ||
      heads % c.kv_heads != 0) {
    throw std::invalid_argument("paged KV cache: need positive page_size, kv_heads, head_dim, "
                                "num_pages, and kv_heads dividing heads");
  }
  check_length("k_pages", c.k_pages.size(), c.num_pages * c.page_elements());
  check_length("v_pages", c.v_pages.size(), c.num_pages * c.page_elements());
  if (c.seq_lens.empty() || c.block_tables.size() != c.seq_lens.size()) {
    throw std::invalid_argument("paged KV cache: one block table per sequence, at least one");
  }
  for (std::size_t s = 0; s < c.seq_lens.size(); ++s) {
    const std::int64_t pages = (c.seq_lens[s] + c.page_size - 1) / c.page_size;
    if (c.seq_lens[s] <= 0 || static_cast<std::int64_t>(c.block_tables[s].size()) < pages) {
      throw std::invalid_argument("paged KV cache: sequence " + std::to_string(s) +
                                  " has a non-positive length or too few pages");
    }
    for (std::int32_t page : c.block_tables[s]) {
      if (page < 0 || page >= c.num_pages) {
        throw std::invalid_argument("paged KV cache: sequence " + std::to_string(s) +
                                    " names page " + std::to_string(page) + " of " +
                                    std::to_string(c.num_pages));
      }
    }
  }
}

KeyRange decode_split_range(std::int64_t seq_len, std::int64_t page_size, std::int64_t num_splits,
                            std::int64_t split) {
  const std::int64_t pages = (seq_len + page_size - 1) / page_size;
  const std::int64_t per_split = (pages + num_splits - 1) / num_splits;
  KeyRange range;
  range.begin = std::min(seq_len, split * per_split * page_size);
  range.end = std::min(seq_len, (split + 1) * per_split * page_size);
  return range;
}

AttentionForward paged_decode_reference(const PagedKvCache& c, std::int64_t heads,
                                        std::span<const float> q, std::int64_t num_splits) {
  validate_paged_kv_cache(c, heads);
  if (num_splits <= 0) throw std::invalid_argument("paged decode: num_splits must be > 0");
  const std::int64_t d = c.head_dim;
  const auto batch = static_cast<std::int64_t>(c.seq_lens.size());
  check_length("q", q.size(), batch * heads * d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::int64_t group = heads / c.kv_heads;
  AttentionForward result;
  result.out.assign(q.size(), 0.0f);
  result.lse.assign(idx(batch * heads), kNegInf);
  std::vector<float> partial_out(idx(num_splits * d));
  std::vector<float> partial_lse(idx(num_splits));
  std::vector<float> score;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t h = 0; h < heads; ++h) {
      const std::int64_t row = b * heads + h;
      const float* q_row = q.data() + row * d;
      const std::int64_t kvh = h / group;
      for (std::int64_t split = 0; split < num_splits; ++split) {
        const KeyRange range = decode_split_range(c.seq_lens[idx(b)], c.page_size, num_splits, split);
        RowState state;
        state.acc.assign(idx(d), 0.0f);
        // Fold one page's worth of keys at a time: contiguous inside a page.
        for (std::int64_t t = range.begin; t < range.end;) {
          const std::int64_t slot = t % c.page_size;
          const std::int64_t take = std::min(c.page_size - slot, range.end - t);
          const std::int64_t page = c.block_tables[idx(b)][idx(t / c.page_size)];
          const std::int64_t base = page * c.page_elements() + kvh * d;
          fold_keys(state, q_row, c.k_pages.data() + base, c.v_pages.data() + base,
                    c.kv_heads * d, d, scale, slot, slot + take, score);
          t += take;
        }
        finish_row(state, partial_out.data() + split * d, &partial_lse[idx(split)], d);
      }
      // Combine the splits.
      float max_lse = kNegInf;
      for (float l : partial_lse) max_lse = std::max(max_lse, l);
      if (max_lse == kNegInf) continue;
      float total = 0;
      for (float l : partial_lse) total += l == kNegInf ? 0.0f : std::exp(l - max_lse);
      const float row_lse = max_lse + std::log(total);
      float* out_row = result.out.data() + row * d;
      for (std::int64_t split = 0; split < num_splits; ++split) {
        const float l = partial_lse[idx(split)];
        if (l == kNegInf) continue;
        const float w = std::exp(l - row_lse);
        for (std::int64_t cc = 0; cc < d; ++cc) out_row[cc] += w * partial_out[idx(split * d + cc)];
      }
      result.lse[idx(row)] = row_lse;
    }
  }
  return result;
}

}  // namespace clustersim::kernels
