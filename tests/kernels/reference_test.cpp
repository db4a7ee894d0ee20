// CPU references of the harness's kernels against naive double-precision loops, on awkward
// shapes (1, 63, 64, 65, 257; causal with sq != skv; GQA; variable length), and the CUPTI
// activity -> span mapping on hand-built records.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention_reference.hpp"
#include "kernels/collective_reference.hpp"
#include "kernels/kernel_span.hpp"
#include "kernels/moe_reference.hpp"

namespace clustersim::kernels {
namespace {

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Naive attention in double: every (query, key) score, softmax, weighted sum. Returns out
// [total_q, heads, d]; rows that see no key are 0.
std::vector<double> naive_attention(const AttentionProblem& p, const std::vector<double>& q,
                                    const std::vector<double>& k, const std::vector<double>& v) {
  const std::int64_t d = p.head_dim;
  std::vector<double> out(q.size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::int64_t q0 = 0, k0 = 0;
  for (std::size_t s = 0; s < p.seq_q.size(); ++s) {
    const std::int64_t sq = p.seq_q[s], skv = p.seq_kv[s];
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kvh = h / (p.heads / p.kv_heads);
      for (std::int64_t i = 0; i < sq; ++i) {
        std::vector<double> score;
        for (std::int64_t j = 0; j < skv; ++j) {
          if (p.causal && j > i + skv - sq) break;
          double dot = 0;
          for (std::int64_t c = 0; c < d; ++c) {
            dot += q[static_cast<std::size_t>(((q0 + i) * p.heads + h) * d + c)] *
                   k[static_cast<std::size_t>(((k0 + j) * p.kv_heads + kvh) * d + c)];
          }
          score.push_back(dot * scale);
        }
        if (score.empty()) continue;
        double max = -std::numeric_limits<double>::infinity();
        for (double x : score) max = std::max(max, x);
        double sum = 0;
        for (double& x : score) sum += (x = std::exp(x - max));
        for (std::size_t j = 0; j < score.size(); ++j) {
          for (std::int64_t c = 0; c < d; ++c) {
            out[static_cast<std::size_t>(((q0 + i) * p.heads + h) * d + c)] +=
                score[j] / sum * v[static_cast<std::size_t>(((k0 + static_cast<std::int64_t>(j)) * p.kv_heads + kvh) * d + c)];
          }
        }
      }
    }
    q0 += sq;
    k0 += skv;
  }
  return out;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

struct Inputs {
  std::vector<float> q, k, v;
};

Inputs make_inputs(const AttentionProblem& p, std::uint32_t seed) {
  return {random_values(static_cast<std::size_t>(p.total_q() * p.heads * p.head_dim), seed),
          random_values(static_cast<std::size_t>(p.total_kv() * p.kv_heads * p.head_dim), seed + 1),
          random_values(static_cast<std::size_t>(p.total_kv() * p.kv_heads * p.head_dim), seed + 2)};
}

AttentionProblem problem(std::vector<std::int64_t> sq, std::vector<std::int64_t> skv, bool causal,
                         std::int64_t heads = 4, std::int64_t kv_heads = 2, std::int64_t d = 16) {
  AttentionProblem p;
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.head_dim = d;
  p.seq_q = std::move(sq);
  p.seq_kv = std::move(skv);
  p.causal = causal;
  return p;
}

TEST(AttentionReference, ForwardMatchesNaiveOnAwkwardLengths) {
  for (std::int64_t s : {1, 63, 64, 65, 257}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "s=" << s << " causal=" << causal);
      const AttentionProblem p = problem({s}, {s}, causal);
      const Inputs in = make_inputs(p, 1);
      const AttentionForward f = attention_forward_reference(p, in.q, in.k, in.v, 64);
      EXPECT_LT(max_abs_diff(f.out, naive_attention(p, to_double(in.q), to_double(in.k), to_double(in.v))), 2e-5);
    }
  }
}

TEST(AttentionReference, VarlenGqaAndBottomRightCausal) {
  // Three sequences of different lengths, sq != skv (and sq > skv: early rows see no key),
  // 8 query heads over 2 KV heads, head_dim 65.
  const AttentionProblem p = problem({1, 65, 40}, {63, 64, 17}, true, 8, 2, 65);
  const Inputs in = make_inputs(p, 7);
  for (std::int64_t block : {1, 16, 64, 1000}) {
    const AttentionForward f = attention_forward_reference(p, in.q, in.k, in.v, block);
    EXPECT_LT(max_abs_diff(f.out, naive_attention(p, to_double(in.q), to_double(in.k), to_double(in.v))), 2e-5);
    // Row 0 of sequence 3 (sq 40 > skv 17) sees no key: lse -inf, output zero.
    const std::int64_t row = (1 + 65) * p.heads;
    EXPECT_TRUE(std::isinf(f.lse[static_cast<std::size_t>(row)]));
  }
}

TEST(AttentionReference, CountsVisiblePairs) {
  EXPECT_DOUBLE_EQ(problem({4}, {4}, true).visible_pairs(), 10.0);   // 1 + 2 + 3 + 4
  EXPECT_DOUBLE_EQ(problem({2}, {4}, true).visible_pairs(), 7.0);    // 3 + 4
  EXPECT_DOUBLE_EQ(problem({4}, {4}, false).forward_flops(), 4.0 * 4 * 16 * 16);
  EXPECT_THROW(validate_attention_problem(problem({4}, {4}, false, 4, 3)), std::invalid_argument);
  EXPECT_THROW(validate_attention_problem(problem({4, 1}, {4}, false)), std::invalid_argument);
}

// L = sum(out * dout); the backward's gradients against central differences of the naive
// double forward, at sampled elements of q, k and v.
TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  for (bool causal : {false, true}) {
    const AttentionProblem p = problem({1, 65, 63}, {64, 65, 257}, causal, 4, 2, 8);
    const Inputs in = make_inputs(p, 11);
    const std::vector<float> dout = random_values(in.q.size(), 99);
    const AttentionForward f = attention_forward_reference(p, in.q, in.k, in.v);
    const AttentionGradients g = attention_backward_reference(p, in.q, in.k, in.v, f.out, dout, f.lse);
    const auto loss = [&](const std::vector<double>& q, const std::vector<double>& k,
                          const std::vector<double>& v) {
      const std::vector<double> out = naive_attention(p, q, k, v);
      double l = 0;
      for (std::size_t i = 0; i < out.size(); ++i) l += out[i] * dout[i];
      return l;
    };
    std::mt19937 pick(5);
    const double h = 1e-4;
    for (int which = 0; which < 3; ++which) {
      const std::vector<float>& base = which == 0 ? in.q : which == 1 ? in.k : in.v;
      const std::vector<float>& grad = which == 0 ? g.dq : which == 1 ? g.dk : g.dv;
      for (int sample = 0; sample < 12; ++sample) {
        const std::size_t i = pick() % base.size();
        std::vector<double> q = to_double(in.q), k = to_double(in.k), v = to_double(in.v);
        std::vector<double>& x = which == 0 ? q : which == 1 ? k : v;
        x[i] += h;
        const double up = loss(q, k, v);
        x[i] -= 2 * h;
        const double down = loss(q, k, v);
        const double numeric = (up - down) / (2 * h);
        EXPECT_NEAR(grad[i], numeric, 1e-3 + 1e-3 * std::abs(numeric))
            << "tensor " << which << " element " << i << " causal " << causal;
      }
    }
  }
}

PagedKvCache make_cache(const std::vector<std::int64_t>& lens, std::int64_t page, std::int64_t kv_heads,
                        std::int64_t d) {
  PagedKvCache c;
  c.page_size = page;
  c.kv_heads = kv_heads;
  c.head_dim = d;
  std::int64_t pages = 0;
  for (std::int64_t len : lens) pages += (len + page - 1) / page;
  c.num_pages = pages + 3;  // spare pages nobody uses
  c.k_pages = random_values(static_cast<std::size_t>(c.num_pages * c.page_elements()), 21);
  c.v_pages = random_values(c.k_pages.size(), 22);
  std::int32_t next = static_cast<std::int32_t>(c.num_pages - 1);
  for (std::int64_t len : lens) {  // pages dealt backwards: never contiguous
    std::vector<std::int32_t> table;
    for (std::int64_t i = 0; i < (len + page - 1) / page; ++i) table.push_back(next--);
    c.block_tables.push_back(table);
    c.seq_lens.push_back(len);
  }
  return c;
}

TEST(PagedDecodeReference, SplitsAndCombineMatchNaive) {
  const std::vector<std::int64_t> lens = {1, 63, 64, 65, 257};
  const PagedKvCache c = make_cache(lens, 16, 2, 32);
  const std::int64_t heads = 6;
  const std::vector<float> q = random_values(static_cast<std::size_t>(5 * heads * 32), 23);
  // The naive answer: gather each sequence's keys contiguously and attend (full mask).
  for (std::int64_t splits : {1, 3, 8, 40}) {
    const AttentionForward f = paged_decode_reference(c, heads, q, splits);
    for (std::size_t b = 0; b < lens.size(); ++b) {
      AttentionProblem p = problem({1}, {lens[b]}, false, heads, 2, 32);
      std::vector<double> k, v;
      for (std::int64_t t = 0; t < lens[b]; ++t) {
        const std::int64_t page = c.block_tables[b][static_cast<std::size_t>(t / 16)];
        const std::int64_t base = page * c.page_elements() + (t % 16) * 2 * 32;
        for (std::int64_t e = 0; e < 2 * 32; ++e) {
          k.push_back(c.k_pages[static_cast<std::size_t>(base + e)]);
          v.push_back(c.v_pages[static_cast<std::size_t>(base + e)]);
        }
      }
      const std::vector<double> qb(q.begin() + static_cast<std::ptrdiff_t>(b * heads * 32),
                                   q.begin() + static_cast<std::ptrdiff_t>((b + 1) * heads * 32));
      const std::vector<double> expected = naive_attention(p, qb, k, v);
      for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR(f.out[b * static_cast<std::size_t>(heads) * 32 + i], expected[i], 2e-5)
            << "sequence " << b << " splits " << splits;
      }
    }
  }
}

TEST(PagedDecodeReference, SplitRangesCoverWholePages) {
  std::int64_t covered = 0;
  for (std::int64_t s = 0; s < 4; ++s) {
    const KeyRange r = decode_split_range(257, 16, 4, s);
    EXPECT_EQ(r.begin, covered);
    EXPECT_TRUE(r.begin % 16 == 0);
    covered = r.end;
  }
  EXPECT_EQ(covered, 257);
  EXPECT_EQ(decode_split_range(1, 16, 4, 3).begin, decode_split_range(1, 16, 4, 3).end);  // empty
}

TEST(MoeReference, MatchesNaiveWeightedSum) {
  MoeRouting r;
  r.tokens = 65;
  r.topk = 2;
  r.num_experts = 4;
  for (std::int64_t t = 0; t < r.tokens; ++t) {
    r.experts.push_back(static_cast<std::int32_t>(t % 4));
    r.experts.push_back(static_cast<std::int32_t>((t * 7 + 1) % 4 == t % 4 ? (t + 1) % 4 : (t * 7 + 1) % 4));
    r.weights.push_back(0.75f);
    r.weights.push_back(0.25f);
  }
  const std::int64_t hidden = 7, ffn = 5;
  const std::vector<float> x = random_values(static_cast<std::size_t>(r.tokens * hidden), 31);
  const std::vector<float> w = random_values(static_cast<std::size_t>(r.num_experts * hidden * ffn), 32);
  const std::vector<float> y = moe_layer_reference(r, hidden, ffn, x, w);
  for (std::int64_t t = 0; t < r.tokens; ++t) {
    for (std::int64_t j = 0; j < ffn; ++j) {
      double expected = 0;
      for (std::int64_t k = 0; k < r.topk; ++k) {
        const std::int64_t e = r.experts[static_cast<std::size_t>(t * 2 + k)];
        double dot = 0;
        for (std::int64_t p = 0; p < hidden; ++p) {
          dot += static_cast<double>(x[static_cast<std::size_t>(t * hidden + p)]) *
                 w[static_cast<std::size_t>((e * hidden + p) * ffn + j)];
        }
        expected += r.weights[static_cast<std::size_t>(t * 2 + k)] * dot;
      }
      EXPECT_NEAR(y[static_cast<std::size_t>(t * ffn + j)], expected, 1e-5);
    }
  }
  const MoeDispatchPlan plan = plan_moe_dispatch(r);
  std::int64_t total = 0;
  for (std::int64_t n : plan.tokens_per_expert) total += n;
  EXPECT_EQ(total, r.tokens * r.topk);
  EXPECT_EQ(plan.expert_offsets.back(), total);
  r.experts[1] = r.experts[0];  // a token naming one expert twice
  EXPECT_THROW(validate_moe_routing(r), std::invalid_argument);
}

TEST(MoeReference, SendCountsAndImbalance) {
  MoeRouting r;
  r.tokens = 4;
  r.topk = 1;
  r.num_experts = 4;
  r.experts = {0, 3, 3, 3};
  r.weights = {1, 1, 1, 1};
  // 2 ranks: tokens 0-1 on rank 0, 2-3 on rank 1; experts 0-1 on rank 0, 2-3 on rank 1.
  EXPECT_EQ(moe_send_counts(r, 2), (std::vector<std::int64_t>{1, 1, 0, 2}));
  EXPECT_DOUBLE_EQ(moe_imbalance({1, 0, 0, 3}), 3.0);
  EXPECT_DOUBLE_EQ(moe_imbalance({2, 2}), 1.0);
}

TEST(CollectiveReference, NcclTestsConventions) {
  const std::vector<std::vector<float>> in = {{1, 2, 3, 4}, {10, 20, 30, 40}};
  EXPECT_EQ(collective_reference(CollectiveOp::kAllReduce, in)[1], (std::vector<float>{11, 22, 33, 44}));
  EXPECT_EQ(collective_reference(CollectiveOp::kReduceScatter, in)[1], (std::vector<float>{33, 44}));
  EXPECT_EQ(collective_reference(CollectiveOp::kAllGather, in)[0].size(), 8u);
  EXPECT_EQ(collective_reference(CollectiveOp::kAllToAll, in)[0], (std::vector<float>{1, 2, 10, 20}));
  EXPECT_EQ(collective_reference(CollectiveOp::kSendRecv, in)[0], in[1]);
  EXPECT_THROW(collective_reference(CollectiveOp::kAllToAll, {{1, 2, 3}, {1, 2, 3}}), std::invalid_argument);
}

TEST(KernelSpan, MapsAHandBuiltKernelRecord) {
  KernelActivity a;
  a.start_ns = 2'000'500;
  a.end_ns = 2'010'500;
  a.device_id = 3;
  a.stream_id = 7;
  a.grid_x = 132;
  a.grid_y = 2;
  a.grid_z = 1;
  a.block_x = 128;
  a.block_y = 2;
  a.block_z = 1;
  a.name = "sm90_xmma_gemm_bf16";
  const KernelSpan s = to_kernel_span(a, 2'000'000);
  EXPECT_EQ(s.name, "sm90_xmma_gemm_bf16");
  EXPECT_DOUBLE_EQ(s.start_s, 500e-9);
  EXPECT_DOUBLE_EQ(s.duration_s, 10e-6);
  EXPECT_EQ(s.ctas, 264);
  EXPECT_EQ(s.threads_per_cta, 256);
  EXPECT_EQ(s.device, 3u);
  KernelActivity copy;
  copy.is_memcpy = true;
  copy.start_ns = 10;
  copy.end_ns = 20;
  copy.bytes = 4096;
  const KernelSpan m = to_kernel_span(copy, 0);
  EXPECT_EQ(m.name, "memcpy");
  EXPECT_EQ(m.ctas, 0);
  EXPECT_EQ(m.bytes, 4096u);
  a.end_ns = a.start_ns - 1;
  EXPECT_THROW(to_kernel_span(a, 0), std::invalid_argument);
  EXPECT_THROW(to_kernel_span(copy, 11), std::invalid_argument);
}

TEST(KernelSpan, IterationDurationsJoinExternalIds) {
  // Iteration 0: two kernels on two streams, 100..250 and 120..400 ns; iteration 1: 500..600;
  // correlation 9 has no external id and is ignored.
  std::vector<KernelActivity> acts(4);
  acts[0].correlation_id = 1, acts[0].start_ns = 100, acts[0].end_ns = 250;
  acts[1].correlation_id = 2, acts[1].start_ns = 120, acts[1].end_ns = 400;
  acts[2].correlation_id = 3, acts[2].start_ns = 500, acts[2].end_ns = 600;
  acts[3].correlation_id = 9, acts[3].start_ns = 0, acts[3].end_ns = 10'000;
  const std::vector<ExternalCorrelation> ext = {{1, 0}, {2, 0}, {3, 1}};
  const auto d = iteration_durations_s(acts, ext);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_DOUBLE_EQ(d.at(0), 300e-9);
  EXPECT_DOUBLE_EQ(d.at(1), 100e-9);
}

}  // namespace
}  // namespace clustersim::kernels
