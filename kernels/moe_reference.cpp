#include "kernels/moe_reference.hpp"

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <stdexcept>
#include <string>

namespace clustersim::kernels {

namespace {

std::size_t idx(std::int64_t value) { return static_cast<std::size_t>(value); }

}  // namespace

void validate_moe_routing(const MoeRouting& r) {
  if (r.tokens <= 0 || r.topk <= 0 || r.num_experts <= 0 || r.topk > r.num_experts) {
    throw std::invalid_argument("MoE routing: need tokens, topk, experts > 0 and topk <= experts");
  }
  const std::int64_t choices = r.tokens * r.topk;
  if (r.experts.size() != idx(choices) || r.weights.size() != idx(choices)) {
    throw std::invalid_argument("MoE routing: experts and weights need tokens x topk = " +
                                std::to_string(choices) + " entries");
  }
  for (std::int64_t t = 0; t < r.tokens; ++t) {
    for (std::int64_t k = 0; k < r.topk; ++k) {
      const std::int32_t e = r.experts[idx(t * r.topk + k)];
      if (e < 0 || e >= r.num_experts) {
        throw std::invalid_argument("MoE routing: token " + std::to_string(t) + " names expert " +
                                    std::to_string(e) + " of " + std::to_string(r.num_experts));
      }
      for (std::int64_t j = 0; j < k; ++j) {
        if (r.experts[idx(t * r.topk + j)] == e) {
          throw std::invalid_argument("MoE routing: token " + std::to_string(t) +
                                      " names expert " + std::to_string(e) + " twice");
        }
      }
    }
  }
}

MoeDispatchPlan plan_moe_dispatch(const MoeRouting& r) {
  validate_moe_routing(r);
  MoeDispatchPlan plan;
  plan.tokens_per_expert.assign(idx(r.num_experts), 0);
  for (std::int32_t e : r.experts) ++plan.tokens_per_expert[idx(e)];
  plan.expert_offsets.assign(idx(r.num_experts + 1), 0);
  std::partial_sum(plan.tokens_per_expert.begin(), plan.tokens_per_expert.end(),
                   plan.expert_offsets.begin() + 1);
  std::vector<std::int64_t> next(plan.expert_offsets.begin(), plan.expert_offsets.end() - 1);
  plan.slot_source.assign(r.experts.size(), 0);
  plan.slot_of_choice.assign(r.experts.size(), 0);
  for (std::size_t choice = 0; choice < r.experts.size(); ++choice) {
    const std::int64_t slot = next[idx(r.experts[choice])]++;
    plan.slot_source[idx(slot)] = static_cast<std::int64_t>(choice);
    plan.slot_of_choice[choice] = slot;
  }
  return plan;
}

std::vector<std::int64_t> moe_send_counts(const MoeRouting& r, std::int64_t ranks) {
  validate_moe_routing(r);
  if (ranks <= 0 || r.tokens % ranks != 0 || r.num_experts % ranks != 0) {
    throw std::invalid_argument("MoE send counts: ranks must divide tokens and experts");
  }
  const std::int64_t tokens_per_rank = r.tokens / ranks;
  const std::int64_t experts_per_rank = r.num_experts / ranks;
  std::vector<std::int64_t> counts(idx(ranks * ranks), 0);
  for (std::int64_t t = 0; t < r.tokens; ++t) {
    for (std::int64_t k = 0; k < r.topk; ++k) {
      const std::int64_t dst = r.experts[idx(t * r.topk + k)] / experts_per_rank;
      ++counts[idx((t / tokens_per_rank) * ranks + dst)];
    }
  }
  return counts;
}

std::vector<float> moe_layer_reference(const MoeRouting& r, std::int64_t hidden, std::int64_t ffn,
                                       std::span<const float> x, std::span<const float> w) {
  const MoeDispatchPlan plan = plan_moe_dispatch(r);
  if (hidden <= 0 || ffn <= 0 || x.size() != idx(r.tokens * hidden) ||
      w.size() != idx(r.num_experts * hidden * ffn)) {
    throw std::invalid_argument("MoE reference: x must be tokens x hidden and w experts x hidden "
                                "x ffn");
  }
  // Dispatch: gather token rows into expert order.
  const std::size_t slots = plan.slot_source.size();
  std::vector<float> dispatched(slots * idx(hidden));
  for (std::size_t slot = 0; slot < slots; ++slot) {
    const std::int64_t token = plan.slot_source[slot] / r.topk;
    std::copy_n(x.begin() + token * hidden, hidden, dispatched.begin() + static_cast<std::ptrdiff_t>(slot) * hidden);
  }
  // Grouped GEMM: each expert's rows times its weight.
  std::vector<float> expert_out(slots * idx(ffn), 0.0f);
  for (std::int64_t e = 0; e < r.num_experts; ++e) {
    const float* we = w.data() + e * hidden * ffn;
    for (std::int64_t slot = plan.expert_offsets[idx(e)]; slot < plan.expert_offsets[idx(e + 1)];
         ++slot) {
      float* out_row = expert_out.data() + slot * ffn;
      const float* in_row = dispatched.data() + slot * hidden;
      for (std::int64_t p = 0; p < hidden; ++p) {
        const float a = in_row[p];
        const float* w_row = we + p * ffn;
        for (std::int64_t j = 0; j < ffn; ++j) out_row[j] += a * w_row[j];
      }
    }
  }
  // Combine: weighted sum of each token's choices, in choice order.
  std::vector<float> y(idx(r.tokens * ffn), 0.0f);
  for (std::int64_t t = 0; t < r.tokens; ++t) {
    for (std::int64_t k = 0; k < r.topk; ++k) {
      const std::size_t choice = idx(t * r.topk + k);
      const float weight = r.weights[choice];
      const float* row = expert_out.data() + plan.slot_of_choice[choice] * ffn;
      for (std::int64_t j = 0; j < ffn; ++j) y[idx(t * ffn + j)] += weight * row[j];
    }
  }
  return y;
}

double moe_imbalance(const std::vector<std::int64_t>& tokens_per_expert) {
  if (tokens_per_expert.empty()) return 1.0;
  const double total = static_cast<double>(
      std::accumulate(tokens_per_expert.begin(), tokens_per_expert.end(), std::int64_t{0}));
  if (total <= 0) return 1.0;
  const double mean = total / static_cast<double>(tokens_per_expert.size());
  return static_cast<double>(
             *std::max_element(tokens_per_expert.begin(), tokens_per_expert.end())) / mean;
}

}  // namespace clustersim::kernels
