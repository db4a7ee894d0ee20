#pragma once
// Iteration time of a serving instance, from the profile's cost models. The CostModel is
// queried once per instance shape when this is built: GEMMs, TP all-reduces, MoE all-to-all and
// memory-bound kernels are tabulated by batch tokens; attention forward (saturating efficiency
// in the KV length) and decode attention (linear in KV bytes) are reduced to their fitted
// coefficients by probing. The event loop then evaluates plain arithmetic: no CostModel call,
// string or allocation per iteration.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/cost/cost_model.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/serve_deployment.hpp"

namespace clustersim::sim {

// KV-cache bytes per token of the whole model: MHA/GQA 2*L*n_kv*d_head*bytes; MLA
// L*(kv_lora_rank + qk_rope_head_dim)*bytes (the compressed latent and the shared rope key).
double kv_bytes_per_token(const ModelSpec& model, Dtype dtype);

struct InstanceShape {
  std::int64_t tp = 1, pp = 1, ep = 1;
  std::int64_t gpus_per_node = 8;
  std::int64_t max_tokens = 8192;     // largest batch the tables cover exactly
  std::int64_t max_sequences = 256;
  double memory_fraction = 0.9;
  std::int64_t hbm_bytes = 0;
};

class IterationCost {
 public:
  IterationCost(const ModelSpec& model, const InstanceShape& shape, const CostModel& cost, Dtype dtype);

  // All layers: GEMMs, TP all-reduces (and EP all-to-all), memory-bound kernels, PP sends, for
  // `tokens` batch tokens; split into the attention side and the MLP/expert side.
  double linear_s(std::int64_t tokens) const { return lookup(linear_, tokens); }
  double attention_linear_s(std::int64_t tokens) const { return lookup(attention_linear_, tokens); }
  double ffn_linear_s(std::int64_t tokens) const { return linear_s(tokens) - attention_linear_s(tokens); }
  // The LM head for `sequences` sampled positions.
  double logits_s(std::int64_t sequences) const { return lookup(logits_, sequences); }
  // Decode attention of all layers over `kv_tokens` cached tokens in total (all sequences).
  double decode_attention_s(double kv_tokens) const {
    return layers_ * (decode_launch_s_ + decode_s_per_token_ * kv_tokens);
  }
  // Attention forward of all layers for a prefill chunk of `chunk` tokens after `prefix`.
  double prefill_attention_s(double prefix, double chunk) const;

  std::int64_t layers() const { return layers_; }
  // KV capacity of one instance, tokens (<= 0: the weights do not fit).
  double kv_capacity_tokens() const { return kv_capacity_tokens_; }
  double weight_bytes_per_gpu() const { return weight_bytes_per_gpu_; }
  double kv_bytes_per_token() const { return kv_bytes_per_token_; }
  bool extrapolated() const { return extrapolated_; }
  const std::vector<std::string>& roofline_bases() const { return roofline_bases_; }

  // Measured whole-iteration fits from the profile (CostModel::serve_iteration) for this model
  // and TP degree, when the instance has no pipeline stages; null otherwise. A plain prefill or
  // decode iteration is then priced by them instead of the composition above.
  const ServeIterationFit* measured_prefill() const { return measured_prefill_ ? &*measured_prefill_ : nullptr; }
  const ServeIterationFit* measured_decode() const { return measured_decode_ ? &*measured_decode_ : nullptr; }
  // A measured fit is used beyond the batches (decode) or batch tokens (prefill) it was fitted on.
  bool measured_extrapolated() const { return measured_extrapolated_; }
  // Id of the measured fit of a phase ("" when none).
  const std::string& measured_basis(ServePhase phase) const { return measured_bases_[phase == ServePhase::kDecode]; }

 private:
  // Exact for tokens <= kExact, then every kStep tokens, linear in between and beyond.
  static constexpr std::int64_t kExact = 512, kStep = 64;
  static double lookup(const std::vector<double>& table, std::int64_t tokens);
  static std::vector<std::int64_t> grid(std::int64_t max_tokens);
  void note(const PricedOp& p);

  std::int64_t layers_ = 0;
  std::vector<double> linear_, attention_linear_, logits_;
  double decode_launch_s_ = 0, decode_s_per_token_ = 0;  // per layer
  double attention_a_ = 0, attention_b_ = 0;             // t/flops = a + b/seq_kv
  double attention_flops_per_qk_ = 0;                    // per layer: flops = this * s_q * s_kv
  double kv_capacity_tokens_ = 0, weight_bytes_per_gpu_ = 0, kv_bytes_per_token_ = 0;
  bool extrapolated_ = false;
  std::vector<std::string> roofline_bases_;
  std::optional<ServeIterationFit> measured_prefill_, measured_decode_;
  std::string measured_bases_[2];
  bool measured_extrapolated_ = false;
};

}  // namespace clustersim::sim
