// CPU backend, attention suite: the CPU reference kernels (kernels/attention_reference.hpp),
// one thread per call, timed as a replay rank runs them: on every rank thread at once
// (cpu_rank_threads; inputs shared read-only, outputs per call), between barriers of all of
// them, like the GEMM suite. A scaling probe of the reference, not a fast CPU attention.
#include "kernels/attention_reference.hpp"
#include "calibrate/cpu_backend.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

namespace {

std::vector<double> time_decode(const AttentionCase& c, const BackendOptions& o) {
  kernels::PagedKvCache cache;
  cache.page_size = c.page_size;
  cache.kv_heads = c.kv_heads;
  cache.head_dim = c.head_dim;
  const std::int64_t pages_per_seq = (c.seq_kv + c.page_size - 1) / c.page_size;
  cache.num_pages = c.batch * pages_per_seq;
  cache.k_pages = cpu_operand(static_cast<std::size_t>(cache.num_pages * cache.page_elements()), 3);
  cache.v_pages = cpu_operand(cache.k_pages.size(), 4);
  // Pages dealt in reverse so that a sequence's pages are not contiguous, as in a real cache.
  for (std::int64_t b = 0; b < c.batch; ++b) {
    std::vector<std::int32_t> table;
    for (std::int64_t p = 0; p < pages_per_seq; ++p) {
      table.push_back(static_cast<std::int32_t>(cache.num_pages - 1 - (p * c.batch + b)));
    }
    cache.block_tables.push_back(table);
    cache.seq_lens.push_back(c.seq_kv);
  }
  const std::vector<float> q = cpu_operand(static_cast<std::size_t>(c.batch * c.heads * c.head_dim), 5);
  return time_ranks(cpu_rank_threads(), o.warmup_iterations, o.iterations, [&](int, int) {
    (void)kernels::paged_decode_reference(cache, c.heads, q, c.num_splits);
  });
}

}  // namespace

MeasurementRecord measure_cpu_attention(const AttentionCase& c, const BackendOptions& o) {
  MeasurementRecord record;
  if (c.pass == "decode") {
    record.samples_s = time_decode(c, o);
  } else {
    kernels::AttentionProblem p;
    p.heads = c.heads;
    p.kv_heads = c.kv_heads;
    p.head_dim = c.head_dim;
    p.causal = c.causal;
    p.seq_q.assign(static_cast<std::size_t>(c.batch), c.seq_q);
    p.seq_kv.assign(static_cast<std::size_t>(c.batch), c.seq_kv);
    const auto q = cpu_operand(static_cast<std::size_t>(p.total_q() * p.heads * p.head_dim), 6);
    const auto k = cpu_operand(static_cast<std::size_t>(p.total_kv() * p.kv_heads * p.head_dim), 7);
    const auto v = cpu_operand(k.size(), 8);
    if (c.pass == "forward") {
      record.samples_s = time_ranks(cpu_rank_threads(), o.warmup_iterations, o.iterations, [&](int, int) {
        (void)kernels::attention_forward_reference(p, q, k, v);
      });
    } else {
      const kernels::AttentionForward fwd = kernels::attention_forward_reference(p, q, k, v);
      const auto dout = cpu_operand(q.size(), 9);
      record.samples_s = time_ranks(cpu_rank_threads(), o.warmup_iterations, o.iterations, [&](int, int) {
        (void)kernels::attention_backward_reference(p, q, k, v, fwd.out, dout, fwd.lse);
      });
    }
  }
  record.shape = attention_record_of(c, Dtype::kFp32, "cpu_reference");
  return record;
}

}  // namespace clustersim::calibrate
