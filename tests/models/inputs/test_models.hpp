#pragma once
// Small hand-built models for unit tests.
#include "models/inputs/model_spec.hpp"

namespace clustersim::test {

// A GPT layer as Korthikanti et al. 2022 analyse it: LayerNorm, MHA, 4h GELU MLP, dropout 0.1.
inline ModelSpec korthikanti_gpt(std::int64_t hidden, std::int64_t heads, std::int64_t layers) {
  ModelSpec m;
  m.name = "korthikanti-gpt";
  m.model_type = "gpt2";
  m.hidden_size = hidden;
  m.num_layers = layers;
  m.vocab_size = 51200;
  m.max_position_embeddings = 2048;
  m.tie_word_embeddings = true;
  m.learned_position_embeddings = true;
  m.norm = NormKind::kLayerNorm;
  m.num_attention_heads = heads;
  m.num_key_value_heads = heads;
  m.head_dim = hidden / heads;
  m.v_head_dim = hidden / heads;
  m.qkv_bias = m.o_bias = m.mlp_bias = true;
  m.gated_mlp = false;
  m.intermediate_size = 4 * hidden;
  m.moe_layers.assign(static_cast<std::size_t>(layers), false);
  m.attention_dropout = 0.1;
  m.hidden_dropout = 0.1;
  return m;
}

}  // namespace clustersim::test
