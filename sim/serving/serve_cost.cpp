#include "sim/serving/serve_cost.hpp"

#include <algorithm>
#include <cmath>

#include "models/accounting/integer_division.hpp"
#include "models/accounting/model_shapes.hpp"
#include "models/accounting/parameter_count.hpp"

namespace clustersim::sim {

double kv_bytes_per_token(const ModelSpec& m, Dtype dtype) {
  const double bytes = bytes_per_element(dtype);
  const double layers = static_cast<double>(m.num_layers);
  if (m.attention == AttentionKind::kMultiLatent) {
    return layers * static_cast<double>(m.kv_lora_rank + m.qk_rope_head_dim) * bytes;
  }
  // K and V; v_head_dim equals head_dim outside MLA.
  return layers * static_cast<double>(m.num_key_value_heads) *
         static_cast<double>(m.head_dim + (m.v_head_dim > 0 ? m.v_head_dim : m.head_dim)) * bytes;
}

namespace {

AttentionRecord probe_record(AttentionPass pass, std::int64_t heads, std::int64_t kv_heads, std::int64_t seq_q,
                             std::int64_t seq_kv, std::int64_t head_dim, Dtype dtype) {
  AttentionRecord r;
  r.pass = pass;
  r.batch = 1;
  r.heads = heads;
  r.kv_heads = kv_heads;
  r.seq_q = seq_q;
  r.seq_kv = seq_kv;
  r.head_dim = head_dim;
  r.dtype = dtype;
  return r;
}

}  // namespace

std::vector<std::int64_t> IterationCost::grid(std::int64_t max_tokens) {
  std::vector<std::int64_t> g;
  for (std::int64_t n = 1; n <= std::min(max_tokens, kExact); ++n) g.push_back(n);
  for (std::int64_t n = kExact + kStep; n < max_tokens + kStep; n += kStep) g.push_back(n);
  return g;
}

double IterationCost::lookup(const std::vector<double>& t, std::int64_t tokens) {
  if (tokens <= 0) return 0;
  if (tokens <= kExact) {
    if (tokens <= static_cast<std::int64_t>(t.size())) return t[static_cast<std::size_t>(tokens - 1)];
  }
  // Index of the grid point at or below `tokens`.
  const auto exact = std::min<std::int64_t>(kExact, static_cast<std::int64_t>(t.size()));
  std::int64_t i = exact - 1 + (tokens - kExact) / kStep;
  i = std::clamp<std::int64_t>(i, 0, static_cast<std::int64_t>(t.size()) - 2);
  auto at = [&](std::int64_t idx) { return idx < kExact ? idx + 1 : kExact + (idx - kExact + 1) * kStep; };
  const double x0 = static_cast<double>(at(i)), x1 = static_cast<double>(at(i + 1));
  const double y0 = t[static_cast<std::size_t>(i)], y1 = t[static_cast<std::size_t>(i + 1)];
  return y0 + (y1 - y0) * (static_cast<double>(tokens) - x0) / (x1 - x0);
}

void IterationCost::note(const PricedOp& p) {
  extrapolated_ = extrapolated_ || p.extrapolated;
  if (p.roofline_default &&
      std::find(roofline_bases_.begin(), roofline_bases_.end(), p.basis) == roofline_bases_.end()) {
    roofline_bases_.push_back(p.basis);
  }
}

IterationCost::IterationCost(const ModelSpec& m, const InstanceShape& s, const CostModel& cost, Dtype dtype) {
  layers_ = m.num_layers;
  const double bytes = bytes_per_element(dtype);
  const double h = static_cast<double>(m.hidden_size);
  const std::int64_t tp = s.tp;
  const int tp_nodes = static_cast<int>(std::max<std::int64_t>(1, tp / std::max<std::int64_t>(1, s.gpus_per_node)));
  const std::int64_t etp = std::max<std::int64_t>(1, tp / s.ep);  // expert tensor parallel

  // One layer of each kind (dense / MoE) priced per token count, times its count.
  std::int64_t dense_layers = 0, moe_layers = 0;
  for (std::int64_t l = 0; l < m.num_layers; ++l) (layer_shapes(m, l).moe ? moe_layers : dense_layers)++;
  const LayerShapes dense = layer_shapes(m, 0);
  LayerShapes moe;
  for (std::int64_t l = 0; l < m.num_layers && moe_layers > 0; ++l) {
    if (layer_shapes(m, l).moe) {
      moe = layer_shapes(m, l);
      break;
    }
  }
  auto layer_time = [&](const LayerShapes& shapes, std::int64_t n, double& attention_part) {
    double total = 0;
    attention_part = 0;
    for (const auto& lin : shapes.linears) {
      GemmShapeDims g{n, lin.out_features, lin.in_features, 1};
      if (lin.sharding == Sharding::kTensorParallel) {
        (lin.row_parallel() ? g.k : g.n) = std::max<std::int64_t>(1, (lin.row_parallel() ? g.k : g.n) / tp);
      } else if (lin.sharding == Sharding::kExpert) {
        const std::int64_t local = std::max<std::int64_t>(1, lin.copies / s.ep);
        const std::int64_t pairs = ceil_div(n * lin.active_copies, s.ep);
        const std::int64_t active = std::min(local, pairs);
        g.batch = active;
        g.m = ceil_div(pairs, active);
        (lin.row_parallel() ? g.k : g.n) = std::max<std::int64_t>(1, (lin.row_parallel() ? g.k : g.n) / etp);
      }
      PricedOp p = cost.gemm(g, dtype);
      note(p);
      total += p.seconds;
      if (lin.role == Role::kAttention) attention_part += p.seconds;
    }
    // Two TP all-reduces (after attention and after the MLP); a MoE layer with EP replaces the
    // second by dispatch + combine. They reduce the layer's output activations, which stay 16-bit
    // when weights and KV are FP8 (FP8 is a GEMM input format; the row-parallel GEMM writes BF16).
    const double act = static_cast<double>(n) * h * bytes;
    const double reduced = static_cast<double>(n) * h * (dtype == Dtype::kFp8 ? 2.0 : bytes);
    if (tp > 1) {
      PricedOp ar = cost.tp_all_reduce(reduced, static_cast<int>(tp), tp_nodes);
      note(ar);
      total += ar.seconds;
      attention_part += ar.seconds;
      if (shapes.moe && s.ep > 1) {
        const double per_rank = act * static_cast<double>(m.num_experts_per_tok) / static_cast<double>(s.ep);
        PricedOp d = cost.moe_all_to_all(MoePhase::kDispatch, per_rank, 1.0, static_cast<int>(s.ep));
        PricedOp c = cost.moe_all_to_all(MoePhase::kCombine, per_rank, 1.0, static_cast<int>(s.ep));
        note(d);
        note(c);
        total += d.seconds + c.seconds;
      } else {
        total += ar.seconds;
      }
    }
    // Norms, residual adds, activation, rotary: about ten activation-sized passes per layer.
    PricedOp mem = cost.memory_bound(10.0 * act / static_cast<double>(tp));
    note(mem);
    total += mem.seconds;
    attention_part += mem.seconds / 2;
    return total;
  };

  const std::int64_t max_tokens = std::max<std::int64_t>(s.max_tokens, 1);
  for (std::int64_t n : grid(max_tokens)) {
    double a_dense = 0, a_moe = 0;
    double t = static_cast<double>(dense_layers) * layer_time(dense, n, a_dense);
    if (moe_layers > 0) t += static_cast<double>(moe_layers) * layer_time(moe, n, a_moe);
    double attn = static_cast<double>(dense_layers) * a_dense + static_cast<double>(moe_layers) * a_moe;
    if (s.pp > 1) {
      const int pp_nodes = s.pp * tp > s.gpus_per_node ? 2 : 1;
      PricedOp send = cost.collective(CollectiveKind::kSendRecv, static_cast<double>(n) * h * bytes / static_cast<double>(tp), 2, pp_nodes);
      note(send);
      t += static_cast<double>(s.pp - 1) * send.seconds;
    }
    linear_.push_back(t);
    attention_linear_.push_back(attn);
  }
  const ModelShapes shapes = model_shapes(m);
  for (std::int64_t n : grid(std::max<std::int64_t>(s.max_sequences, 1))) {
    GemmShapeDims g{n, std::max<std::int64_t>(1, m.vocab_size / tp), m.hidden_size, 1};
    PricedOp p = cost.gemm(g, dtype);
    note(p);
    logits_.push_back(p.seconds);
  }

  // Attention: heads of one TP rank.
  const std::int64_t heads = std::max<std::int64_t>(1, m.num_attention_heads / tp);
  const bool mla = m.attention == AttentionKind::kMultiLatent;
  const std::int64_t kv_heads = mla ? heads : std::max<std::int64_t>(1, m.num_key_value_heads / tp);
  const std::int64_t d = m.head_dim;
  auto forward = [&](std::int64_t seq) {
    const AttentionRecord r = probe_record(AttentionPass::kForward, heads, kv_heads, seq, seq, d, dtype);
    PricedOp p = cost.attention(r);
    note(p);
    return std::pair{p.seconds, attention_pass_flops(r)};
  };
  auto [t1, f1] = forward(1024);
  auto [t2, f2] = forward(8192);
  const double y1 = t1 / f1, y2 = t2 / f2;
  attention_b_ = std::max(0.0, (y1 - y2) / (1.0 / 1024 - 1.0 / 8192));
  attention_a_ = std::max(0.0, y1 - attention_b_ / 1024);
  attention_flops_per_qk_ = f1 / (1024.0 * 1024.0);

  // Decode attention: bytes of the KV read by one rank per layer per cached token.
  kv_bytes_per_token_ = sim::kv_bytes_per_token(m, dtype);
  const double kv_shard = mla ? 1.0 : static_cast<double>(std::min(tp, std::max<std::int64_t>(1, m.num_key_value_heads)));
  const double rank_layer_bytes_per_token = kv_bytes_per_token_ / static_cast<double>(m.num_layers) / kv_shard;
  auto decode = [&](std::int64_t seq_kv) {
    const AttentionRecord r = probe_record(AttentionPass::kDecode, heads, kv_heads, 1, seq_kv, d, dtype);
    PricedOp p = cost.attention(r);
    note(p);
    return std::pair{p.seconds, decode_kv_bytes(r)};
  };
  auto [d1, b1] = decode(1024);
  auto [d2, b2] = decode(65536);
  const double s_per_byte = (d2 - d1) / (b2 - b1);
  decode_launch_s_ = std::max(0.0, d1 - s_per_byte * b1);
  decode_s_per_token_ = s_per_byte * rank_layer_bytes_per_token;

  // Memory: weights per GPU, the rest (of memory_fraction) holds KV.
  const double params = static_cast<double>(count_parameters(m).total);
  weight_bytes_per_gpu_ = params * bytes / static_cast<double>(tp * s.pp);
  const double free_per_gpu = static_cast<double>(s.hbm_bytes) * s.memory_fraction - weight_bytes_per_gpu_;
  const double kv_per_token_per_gpu = kv_bytes_per_token_ / kv_shard / static_cast<double>(s.pp);
  kv_capacity_tokens_ = free_per_gpu / kv_per_token_per_gpu;

  if (s.pp != 1) return;  // the fits time whole single-stage iterations
  for (ServePhase phase : {ServePhase::kPrefill, ServePhase::kDecode}) {
    const Fit* f = cost.serve_iteration(m.name, tp, phase, dtype);
    if (!f) continue;
    const auto& fit = std::get<ServeIterationFit>(f->model);
    (phase == ServePhase::kPrefill ? measured_prefill_ : measured_decode_) = fit;
    measured_bases_[phase == ServePhase::kDecode] = f->id;
    // Beyond the batches (decode) or batch tokens (prefill) it was fitted on: extrapolated.
    const char* variable = phase == ServePhase::kPrefill ? "tokens" : "batch";
    const double largest = static_cast<double>(phase == ServePhase::kPrefill ? s.max_tokens : s.max_sequences);
    if (auto it = f->ranges.find(variable); it != f->ranges.end() && largest > it->second.max) {
      measured_extrapolated_ = true;
    }
  }
}

double IterationCost::prefill_attention_s(double prefix, double chunk) const {
  if (chunk <= 0) return 0;
  // Causal: the chunk's queries see the prefix and, on average, half of the chunk.
  const double seq_kv = prefix + chunk;
  const double flops = attention_flops_per_qk_ * chunk * (prefix + 0.5 * chunk);
  return static_cast<double>(layers_) * flops * (attention_a_ + attention_b_ / seq_kv);
}

}  // namespace clustersim::sim
