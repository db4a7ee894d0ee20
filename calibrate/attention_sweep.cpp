// Attention sweep: forward and backward (causal and full, the models' GQA head counts per
// tensor-parallel rank) over sequence lengths, and decode over a paged KV cache by batch and
// context length.
#include <fmt/format.h>

#include "calibrate/sweeps.hpp"

namespace clustersim::calibrate {

namespace {

SweepCase attention_case(const std::string& what, const AttentionCase& a) {
  return {Suite::kAttention,
          fmt::format("attention {} {} b{} h{}/{} d{} sq{} skv{}{}{} {}", a.pass, what, a.batch,
                      a.heads, a.kv_heads, a.head_dim, a.seq_q, a.seq_kv,
                      a.causal ? " causal" : "",
                      a.pass == "decode" ? fmt::format(" page{} split{}", a.page_size, a.num_splits) : "",
                      a.dtype),
          a};
}

}  // namespace

std::vector<SweepCase> attention_sweep(const SweepOptions& o) {
  std::vector<SweepCase> cases;
  const bool cpu = o.scale == SweepScale::kCpu;
  struct Heads {
    std::string what;
    std::int64_t heads, kv_heads, head_dim;
  };
  std::vector<Heads> heads;
  if (cpu) {
    heads = {{"synthetic", 4, 2, 64}};
  } else {
    for (const auto& name : o.models) {
      const ModelSpec m = load_sweep_model(name);
      for (int tp : o.tensor_parallel) {
        if (m.num_attention_heads % tp != 0) continue;
        const std::int64_t kv = std::max<std::int64_t>(1, m.num_key_value_heads / tp);
        heads.push_back({fmt::format("{} tp{}", name, tp), m.num_attention_heads / tp, kv, m.head_dim});
      }
    }
  }
  const std::vector<std::int64_t> seqs = cpu ? std::vector<std::int64_t>{64, 96, 128, 192, 256, 384}
                                             : std::vector<std::int64_t>{512, 1024, 2048, 4096, 8192, 16384};
  const std::string dtype = cpu ? "fp32" : "bf16";
  for (const Heads& h : heads) {
    for (const char* pass : {"forward", "backward"}) {
      for (bool causal : {true, false}) {
        for (std::int64_t s : seqs) {
          const std::int64_t batch = cpu ? 1 : std::max<std::int64_t>(1, 16384 / s);
          AttentionCase a;
          a.pass = pass;
          a.batch = batch;
          a.heads = h.heads;
          a.kv_heads = h.kv_heads;
          a.head_dim = h.head_dim;
          a.seq_q = s;
          a.seq_kv = s;
          a.causal = causal;
          a.dtype = dtype;
          cases.push_back(attention_case(h.what, a));
        }
      }
    }
    const std::vector<std::int64_t> batches = cpu ? std::vector<std::int64_t>{4}
                                                  : std::vector<std::int64_t>{1, 8, 32, 64};
    const std::vector<std::int64_t> contexts = cpu ? std::vector<std::int64_t>{256, 512, 1024, 2048, 4096, 8192}
                                                   : std::vector<std::int64_t>{1024, 4096, 16384, 32768};
    for (std::int64_t b : batches) {
      for (std::int64_t ctx : contexts) {
        AttentionCase a;
        a.pass = "decode";
        a.batch = b;
        a.heads = h.heads;
        a.kv_heads = h.kv_heads;
        a.head_dim = h.head_dim;
        a.seq_q = 1;
        a.seq_kv = ctx;
        a.page_size = cpu ? 64 : 256;
        // Split the context when batch x kv heads is too small to fill the machine.
        a.num_splits = cpu ? 2 : std::max<std::int64_t>(1, std::min<std::int64_t>(16, 132 / (b * h.kv_heads)));
        a.dtype = dtype;
        cases.push_back(attention_case(h.what, a));
      }
    }
  }
  return cases;
}

}  // namespace clustersim::calibrate
