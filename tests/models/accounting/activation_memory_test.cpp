// Activation memory per layer against Korthikanti et al. 2022, "Reducing Activation
// Recomputation in Large Transformer Models" (arXiv:2205.05198), Table 2.
#include <gtest/gtest.h>

#include "models/accounting/memory_estimate.hpp"
#include "models/accounting/model_shapes.hpp"
#include "tests/models/inputs/test_models.hpp"

namespace clustersim {
namespace {

// The paper's GPT-3 175B configuration: a = 96, h = 12288, s = 2048; b = 1, t = 8.
constexpr double s = 2048, b = 1, h = 12288, a = 96, t = 8;

class Korthikanti : public ::testing::Test {
 protected:
  ModelSpec model = test::korthikanti_gpt(12288, 96, 96);
  LayerShapes layer = layer_shapes(model, 0);

  ActivationSettings settings(std::int64_t tp, bool sp, bool selective) const {
    ActivationSettings x;
    x.tokens = static_cast<std::int64_t>(s * b);
    x.keys = static_cast<std::int64_t>(s);
    x.micro_batch = 1;
    x.tp = tp;
    x.etp = tp;
    x.sequence_parallel = sp;
    x.selective_recompute = selective;
    x.materialized_softmax = true;  // the paper's attention stores the s x s scores
    x.bytes_per_value = 2;
    x.attention_dropout = 0.1;
    x.hidden_dropout = 0.1;
    return x;
  }
  double bytes(std::int64_t tp, bool sp, bool selective) const {
    return layer_activation_bytes(model, layer, settings(tp, sp, selective));
  }
};

TEST_F(Korthikanti, NoParallelism) {
  EXPECT_DOUBLE_EQ(bytes(1, false, false), s * b * h * (34 + 5 * a * s / h));
}

TEST_F(Korthikanti, TensorParallel) {
  EXPECT_DOUBLE_EQ(bytes(8, false, false), s * b * h * (10 + 24 / t + 5 * a * s / (h * t)));
}

TEST_F(Korthikanti, TensorAndSequenceParallel) {
  EXPECT_DOUBLE_EQ(bytes(8, true, false), s * b * h * (34 / t + 5 * a * s / (h * t)));
}

TEST_F(Korthikanti, TensorParallelSelectiveRecompute) {
  EXPECT_DOUBLE_EQ(bytes(8, false, true), s * b * h * (10 + 24 / t));
}

TEST_F(Korthikanti, TensorSequenceParallelSelectiveRecompute) {
  EXPECT_DOUBLE_EQ(bytes(8, true, true), s * b * h * 34 / t);
}

// Transformer Engine FP8 keeps linears' inputs in FP8: the QKV and fc1 inputs (2sbh each) and
// the fc2 input (8sbh) halve, and the output projection keeps an FP8 copy (sbh) beside the
// attention output flash attention's backward needs: 34 - 1 - 1 - 4 + 1 = 29.
TEST_F(Korthikanti, Fp8KeepsLinearInputsInOneByte) {
  ActivationSettings x = settings(1, false, false);
  x.linear_input_bytes = 1;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(model, layer, x), s * b * h * (29 + 5 * a * s / h));
}

TEST_F(Korthikanti, FullRecomputeKeepsTheLayerInput) {
  EXPECT_DOUBLE_EQ(checkpointed_layer_bytes(model, settings(8, false, false)), 2 * s * b * h);
  // With sequence parallelism the checkpointed input is itself split across the TP ranks.
  EXPECT_DOUBLE_EQ(checkpointed_layer_bytes(model, settings(8, true, false)), 2 * s * b * h / t);
}

TEST_F(Korthikanti, FlashAttentionKeepsOnlyTheLogSumExp) {
  ActivationSettings x = settings(8, true, false);
  x.materialized_softmax = false;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(model, layer, x), s * b * h * 34 / t + 4 * a * s * b / t);
}

TEST(ActivationMemory, GatedGqaLayerCountsEachTensor) {
  // Llama-style layer without dropout: norms and inputs 8 sbh, Q sbh*2, K and V 2 * 2 s b kv d,
  // output-projection input 2 sbh, gated MLP 3 * 2 s b f; all split by t under SP.
  ModelSpec m = test::korthikanti_gpt(4096, 32, 1);
  m.num_key_value_heads = 8;
  m.gated_mlp = true;
  m.intermediate_size = 14336;
  m.attention_dropout = m.hidden_dropout = 0;
  ActivationSettings x;
  x.tokens = 8192;
  x.keys = 8192;
  x.tp = 4;
  x.etp = 4;
  x.sequence_parallel = true;
  x.selective_recompute = true;
  const double n = 8192, hh = 4096, kv = 8 * 128, f = 14336, tp = 4;
  const double expected = (8 * n * hh + 2 * n * hh + 2 * 2 * n * kv + 2 * n * hh + 6 * n * f) / tp;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, layer_shapes(m, 0), x), expected);
}

}  // namespace
}  // namespace clustersim
