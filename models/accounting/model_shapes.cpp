#include "models/accounting/model_shapes.hpp"

namespace clustersim {

std::int64_t LayerShapes::parameters() const {
  std::int64_t n = 0;
  for (const auto& l : linears) n += l.parameters();
  for (const auto& v : vectors) n += v.size;
  return n;
}

std::int64_t LayerShapes::active_parameters() const {
  std::int64_t n = 0;
  for (const auto& l : linears) n += l.active_parameters();
  for (const auto& v : vectors) n += v.size;
  return n;
}

double LayerShapes::forward_matmul_flops_per_token() const {
  double f = 0;
  for (const auto& l : linears) f += l.forward_flops_per_token();
  return f;
}

namespace {

std::int64_t norm_size(const ModelSpec& m, std::int64_t width) {
  return m.norm == NormKind::kLayerNorm ? 2 * width : width;
}

void add_attention(const ModelSpec& m, LayerShapes& s) {
  const std::int64_t h = m.hidden_size;
  const std::int64_t heads = m.num_attention_heads;
  if (m.attention == AttentionKind::kMultiLatent) {
    // Megatron-LM keeps MLA's down-projections whole on every tensor-parallel rank.
    if (m.q_lora_rank > 0) {
      s.linears.push_back({"q_a_proj", Role::kAttention, h, m.q_lora_rank, false, Sharding::kReplicated});
      s.vectors.push_back({"q_a_norm", Role::kAttention, m.q_lora_rank, Sharding::kReplicated});
      s.linears.push_back({"q_b_proj", Role::kAttention, m.q_lora_rank, heads * m.head_dim});
    } else {
      s.linears.push_back({"q_proj", Role::kAttention, h, heads * m.head_dim});
    }
    s.linears.push_back(
        {"kv_a_proj", Role::kAttention, h, m.kv_lora_rank + m.qk_rope_head_dim, false, Sharding::kReplicated});
    s.vectors.push_back({"kv_a_norm", Role::kAttention, m.kv_lora_rank, Sharding::kReplicated});
    s.linears.push_back(
        {"kv_b_proj", Role::kAttention, m.kv_lora_rank, heads * (m.qk_nope_head_dim + m.v_head_dim)});
    s.linears.push_back({"o_proj", Role::kAttention, heads * m.v_head_dim, h, m.o_bias});
    return;
  }
  s.linears.push_back({"q_proj", Role::kAttention, h, m.q_dim(), m.qkv_bias});
  s.linears.push_back({"k_proj", Role::kAttention, h, m.kv_dim(), m.qkv_bias});
  s.linears.push_back({"v_proj", Role::kAttention, h, m.num_key_value_heads * m.v_head_dim, m.qkv_bias});
  s.linears.push_back({"o_proj", Role::kAttention, heads * m.v_head_dim, h, m.o_bias});
  if (m.qk_norm) {
    s.vectors.push_back({"q_norm", Role::kAttention, m.head_dim, Sharding::kReplicated});
    s.vectors.push_back({"k_norm", Role::kAttention, m.head_dim, Sharding::kReplicated});
  }
}

// A feed-forward block of `width` hidden units; gated blocks have a gate and an up projection.
void add_mlp(const ModelSpec& m, LayerShapes& s, std::int64_t width, std::string_view up,
             std::string_view gate, std::string_view down, Role role, Sharding sharding,
             std::int64_t copies, std::int64_t active) {
  const std::int64_t h = m.hidden_size;
  if (m.gated_mlp) s.linears.push_back({gate, role, h, width, m.mlp_bias, sharding, copies, active});
  s.linears.push_back({up, role, h, width, m.mlp_bias, sharding, copies, active});
  s.linears.push_back({down, role, width, h, m.mlp_bias, sharding, copies, active});
}

}  // namespace

LayerShapes layer_shapes(const ModelSpec& m, std::int64_t layer) {
  LayerShapes s;
  s.moe = m.moe_layers.at(static_cast<std::size_t>(layer));
  s.vectors.push_back({"input_norm", Role::kNorm, norm_size(m, m.hidden_size), Sharding::kReplicated});
  add_attention(m, s);
  s.vectors.push_back({"post_attention_norm", Role::kNorm, norm_size(m, m.hidden_size), Sharding::kReplicated});
  if (!s.moe) {
    add_mlp(m, s, m.intermediate_size, "up_proj", "gate_proj", "down_proj", Role::kMlp,
            Sharding::kTensorParallel, 1, 1);
    return s;
  }
  s.linears.push_back({"router", Role::kRouter, m.hidden_size, m.num_experts, false, Sharding::kReplicated});
  if (m.router_bias) s.vectors.push_back({"router_bias", Role::kRouter, m.num_experts, Sharding::kReplicated});
  add_mlp(m, s, m.moe_intermediate_size, "expert_up", "expert_gate", "expert_down",
          Role::kRoutedExpert, Sharding::kExpert, m.num_experts, m.num_experts_per_tok);
  if (m.shared_expert_intermediate_size > 0) {
    add_mlp(m, s, m.shared_expert_intermediate_size, "shared_up", "shared_gate", "shared_down",
            Role::kSharedExpert, Sharding::kTensorParallel, 1, 1);
    if (m.shared_expert_gate) {
      s.linears.push_back({"shared_expert_gate", Role::kSharedExpert, m.hidden_size, 1, false, Sharding::kReplicated});
    }
  }
  return s;
}

ModelShapes model_shapes(const ModelSpec& m) {
  ModelShapes shapes;
  for (std::int64_t i = 0; i < m.num_layers; ++i) shapes.layers.push_back(layer_shapes(m, i));
  shapes.embedding = m.vocab_size * m.hidden_size;
  if (m.learned_position_embeddings) {
    shapes.position_embedding = m.max_position_embeddings * m.hidden_size;
  }
  shapes.final_norm = norm_size(m, m.hidden_size);
  shapes.lm_head = {"lm_head", Role::kLmHead, m.hidden_size, m.vocab_size, false, Sharding::kTensorParallel,
                    m.tie_word_embeddings ? 0 : 1, 1};
  return shapes;
}

}  // namespace clustersim
