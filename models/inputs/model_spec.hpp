#pragma once
// The architecture of a decoder-only transformer, normalised from a Hugging Face config.json.
#include <cstdint>
#include <string>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

enum class AttentionKind { kMultiHead, kMultiLatent };  // MHA/GQA/MQA, or DeepSeek MLA
enum class NormKind { kRmsNorm, kLayerNorm };           // weight only, or weight + bias

struct ModelSpec {
  std::string name;        // preset name or file stem
  std::string source;      // file the config was read from
  std::string model_type;  // HF model_type as given
  std::string dtype;       // torch_dtype (transformers v4) or dtype (v5), informative only

  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t vocab_size = 0;
  std::int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool learned_position_embeddings = false;  // gpt2 `wpe`
  NormKind norm = NormKind::kRmsNorm;

  // Attention.
  AttentionKind attention = AttentionKind::kMultiHead;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;     // query/key head dim (MLA: qk_nope_head_dim + qk_rope_head_dim)
  std::int64_t v_head_dim = 0;   // value head dim
  bool qkv_bias = false;
  bool o_bias = false;           // bias of the attention output projection
  bool qk_norm = false;          // per-head RMSNorm on q and k (qwen3)
  std::int64_t sliding_window = 0;  // 0 = full attention
  // MLA only.
  std::int64_t q_lora_rank = 0;  // 0 = q projected directly
  std::int64_t kv_lora_rank = 0;
  std::int64_t qk_nope_head_dim = 0;
  std::int64_t qk_rope_head_dim = 0;

  // MLP. Gated (SwiGLU: gate, up, down) or plain (GELU: up, down).
  bool gated_mlp = true;
  bool mlp_bias = false;
  std::int64_t intermediate_size = 0;  // dense layers

  // Mixture of experts; num_experts == 0 for dense models.
  std::int64_t num_experts = 0;
  std::int64_t num_experts_per_tok = 0;
  std::int64_t moe_intermediate_size = 0;  // per routed expert
  std::int64_t shared_expert_intermediate_size = 0;  // all shared experts together; 0 = none
  bool shared_expert_gate = false;         // qwen2_moe's sigmoid gate on the shared expert
  bool router_bias = false;                // deepseek-v3's e_score_correction_bias
  std::vector<bool> moe_layers;            // per layer: true when its MLP is a MoE

  std::int64_t num_mtp_layers = 0;  // multi-token-prediction modules; excluded from counts

  // Dropout probabilities in the config (used as defaults by the plan).
  double attention_dropout = 0.0;
  double hidden_dropout = 0.0;

  bool is_moe() const { return num_experts > 0; }
  std::int64_t num_moe_layers() const;
  std::int64_t q_dim() const { return num_attention_heads * head_dim; }
  std::int64_t kv_dim() const { return num_key_value_heads * head_dim; }
};

// Reads a config.json (path or inline JSON); `display_name` is the preset name when there is one.
// Collects every problem into InputErrors; warnings (unknown model_type, ...) go to `diag`.
ModelSpec load_model_spec(const std::string& source, const std::string& display_name,
                          Diagnostics& diag);

}  // namespace clustersim
