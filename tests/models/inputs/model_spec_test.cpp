// Reading Hugging Face config.json files: aliases, nesting, families.
#include <gtest/gtest.h>

#include "models/inputs/model_spec.hpp"
#include "models/accounting/parameter_count.hpp"

namespace clustersim {
namespace {

ModelSpec inline_model(const std::string& json, Diagnostics& diag) {
  return load_model_spec(json, "inline", diag);
}

TEST(ModelSpec, ExpertCountSpellingsAreAliases) {
  const std::string base =
      R"("model_type": "mixtral", "hidden_size": 1024, "num_hidden_layers": 4,
         "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 2048,
         "vocab_size": 1000, "num_experts_per_tok": 2)";
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts"}) {
    Diagnostics diag;
    ModelSpec m = inline_model("{" + base + ", \"" + key + "\": 8}", diag);
    EXPECT_EQ(m.num_experts, 8) << key;
    EXPECT_EQ(m.num_moe_layers(), 4) << key;
    EXPECT_EQ(m.moe_intermediate_size, 2048) << key;
  }
}

TEST(ModelSpec, TextConfigNestingAndTransformersV5Dtype) {
  Diagnostics diag;
  ModelSpec m = inline_model(
      R"({"model_type": "llava", "text_config": {"model_type": "llama", "hidden_size": 4096,
          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
          "intermediate_size": 14336, "vocab_size": 128256, "dtype": "bfloat16"}})",
      diag);
  EXPECT_EQ(m.hidden_size, 4096);
  EXPECT_EQ(m.dtype, "bfloat16");
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_TRUE(diag.warnings().empty());
}

TEST(ModelSpec, GptTwoSchema) {
  Diagnostics diag;
  ModelSpec m = inline_model(
      R"({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
          "vocab_size": 50257})",
      diag);
  EXPECT_EQ(m.intermediate_size, 4 * 768);  // n_inner absent means 4 * n_embd
  EXPECT_FALSE(m.gated_mlp);
  EXPECT_TRUE(m.tie_word_embeddings);
  // GPT-2 small has 124.4M parameters.
  EXPECT_EQ(count_parameters(m).total, 124439808);
}

// Nemotron-4 340B (Hugging Face "nemotron" schema): squared-ReLU MLP without a gate, LayerNorm,
// no linear biases. Its technical report (arXiv:2406.11704) gives 331.6B non-embedding and 9.4B
// embedding parameters.
TEST(ModelSpec, NemotronSchema) {
  Diagnostics diag;
  ModelSpec m = inline_model(
      R"({"model_type": "nemotron", "hidden_size": 18432, "num_hidden_layers": 96,
          "num_attention_heads": 96, "num_key_value_heads": 8, "intermediate_size": 73728,
          "vocab_size": 256000, "tie_word_embeddings": false})",
      diag);
  EXPECT_TRUE(diag.warnings().empty());
  EXPECT_FALSE(m.gated_mlp);
  EXPECT_EQ(m.norm, NormKind::kLayerNorm);
  EXPECT_FALSE(m.qkv_bias || m.o_bias || m.mlp_bias);
  EXPECT_FALSE(m.learned_position_embeddings);
  ParameterCount p = count_parameters(m);
  EXPECT_NEAR(static_cast<double>(p.attention + p.dense_mlp + p.norms), 331.6e9, 0.05e9);
  EXPECT_NEAR(static_cast<double>(p.embedding + p.lm_head), 9.4e9, 0.05e9);
}

TEST(ModelSpec, QwenMoeLayerPlacementAndSharedExpert) {
  Diagnostics diag;
  ModelSpec m = inline_model(
      R"({"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 6,
          "num_attention_heads": 16, "intermediate_size": 5632, "moe_intermediate_size": 1408,
          "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
          "decoder_sparse_step": 2, "mlp_only_layers": [5], "vocab_size": 151936})",
      diag);
  EXPECT_EQ(m.moe_layers, (std::vector<bool>{false, true, false, true, false, false}));
  EXPECT_TRUE(m.shared_expert_gate);
  EXPECT_TRUE(m.qkv_bias);
}

TEST(ModelSpec, UnknownModelTypeWarns) {
  Diagnostics diag;
  inline_model(R"({"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 100})",
               diag);
  ASSERT_EQ(diag.warnings().size(), 1u);
  EXPECT_EQ(diag.warnings()[0].pointer, "/model_type");
}

TEST(ModelSpec, MissingKeysAreAllReported) {
  Diagnostics diag;
  try {
    inline_model(R"({"model_type": "llama", "hidden_size": 64})", diag);
    FAIL() << "expected InputErrors";
  } catch (const InputErrors& e) {
    std::string all = e.what();
    EXPECT_NE(all.find("/num_hidden_layers: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("/vocab_size: required key is missing"), std::string::npos) << all;
    EXPECT_NE(all.find("/num_attention_heads: required key is missing"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace clustersim
