#include "models/planning/plan_search.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

#include "models/accounting/memory_estimate.hpp"
#include "models/accounting/model_shapes.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim {

namespace {

std::vector<std::int64_t> powers_of_two_dividing(std::int64_t n, std::int64_t limit) {
  std::vector<std::int64_t> out;
  for (std::int64_t v = 1; v <= limit && v <= n; v *= 2) {
    if (n % v == 0) out.push_back(v);
  }
  return out;
}

std::vector<std::int64_t> divisors(std::int64_t n, std::int64_t limit) {
  std::vector<std::int64_t> out;
  for (std::int64_t v = 1; v <= limit && v <= n; ++v) {
    if (n % v == 0) out.push_back(v);
  }
  return out;
}

// The first error, without file and pointer: what rule was broken.
std::string reason_of(const std::vector<InputError>& errors) {
  if (errors.empty()) return "invalid";
  std::string m = errors.front().message;
  // Collapse numbers so that reasons group ("6 does not divide ..." -> "# does not divide ...").
  std::string out;
  bool in_number = false;
  for (char c : m) {
    bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) out += '#';
    if (!digit) out += c;
    in_number = digit;
  }
  return errors.front().pointer.empty() ? out : errors.front().pointer.substr(1) + ": " + out;
}

// The first error, without file, with its numbers: one candidate's instance of a reason.
std::string example_of(const std::vector<InputError>& errors) {
  if (errors.empty()) return "invalid";
  const InputError& e = errors.front();
  return e.pointer.empty() ? e.message : e.pointer.substr(1) + ": " + e.message;
}

}  // namespace

SearchResult search_plans(const ModelSpec& model, const ClusterSpec& cluster, const CostModel& costs,
                          const SearchRequest& req) {
  auto start = std::chrono::steady_clock::now();
  SearchResult result;
  PriceCache cache;
  struct Candidate {
    double lower_bound_s = 0;
    TrainPlan plan;
    ParallelLayout layout;
    MemoryEstimate memory;
  };
  std::vector<Candidate> candidates;
  const ModelShapes shapes = model_shapes(model);  // the same for every candidate
  const std::int64_t gpn = cluster.node.gpus_per_node;
  const double hbm = static_cast<double>(cluster.gpu.hbm_bytes);
  for (std::int64_t tp : powers_of_two_dividing(req.gpus, gpn)) {
    for (std::int64_t cp : powers_of_two_dividing(req.gpus / tp, 16)) {
      for (std::int64_t pp : divisors(req.gpus / (tp * cp), std::min<std::int64_t>(model.num_layers, 128))) {
        const std::int64_t per_rank = model.num_layers / pp;
        // When PP does not divide the layers, the first and last stages take what the even
        // middle stages leave (Megatron's decoder_first/last_pipeline_num_layers), as Llama 3
        // 405B's 126 layers on 16 stages.
        std::optional<std::int64_t> first_layers, last_layers;
        if (model.num_layers % pp != 0) {
          if (pp < 3) continue;
          std::int64_t middle = (model.num_layers + pp - 1) / pp;
          std::int64_t rest = model.num_layers - (pp - 2) * middle;
          if (rest < 2) continue;
          first_layers = rest / 2;
          last_layers = rest - rest / 2;
        }
        std::vector<std::int64_t> vpps = {1};
        if (pp > 1 && model.num_layers % pp == 0) {
          for (std::int64_t v = 2; v <= per_rank; ++v) {
            if (per_rank % v == 0) vpps.push_back(v);
          }
        }
        std::vector<std::int64_t> eps = {1};
        if (model.is_moe()) eps = powers_of_two_dividing(model.num_experts, 64);
        for (std::int64_t vpp : vpps) {
          for (std::int64_t ep : eps) {
            for (std::int64_t mbs : {1, 2, 4, 8}) {
              for (Recompute recompute : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
                for (bool distributed : {true, false}) {
                  ++result.enumerated;
                  TrainPlan plan = req.base;
                  plan.tensor_model_parallel_size = tp;
                  plan.context_parallel_size = cp;
                  plan.pipeline_model_parallel_size = pp;
                  plan.expert_model_parallel_size = ep;
                  plan.expert_tensor_parallel_size.reset();
                  plan.num_virtual_stages_per_pipeline_rank.reset();
                  plan.num_layers_per_virtual_pipeline_stage.reset();
                  plan.decoder_first_pipeline_num_layers = first_layers;
                  plan.decoder_last_pipeline_num_layers = last_layers;
                  if (vpp > 1) plan.num_virtual_stages_per_pipeline_rank = vpp;
                  plan.micro_batch_size = mbs;
                  plan.global_batch_size = req.global_batch_size;
                  plan.seq_length = req.seq_length;
                  plan.sequence_parallel = tp > 1;
                  plan.recompute_granularity = recompute;
                  plan.recompute_method = RecomputeMethod::kUniform;
                  plan.recompute_num_layers.reset();
                  if (recompute == Recompute::kFull) plan.recompute_num_layers = 1;
                  plan.use_distributed_optimizer = distributed;
                  plan.data_parallel_sharding_strategy = distributed ? DpSharding::kOptim : DpSharding::kNoShard;
                  Diagnostics diag;
                  std::optional<ParallelLayout> valid = try_derive_layout(model, plan, &cluster, req.gpus, diag);
                  if (!valid) {
                    ++result.invalid;
                    const std::string reason = reason_of(diag.errors());
                    if (++result.invalid_reasons[reason] == 1) result.invalid_examples[reason] = example_of(diag.errors());
                    continue;
                  }
                  ParallelLayout& layout = *valid;
                  MemoryEstimate memory = estimate_memory(model, shapes, plan, layout);
                  if (memory.peak().bytes.total() > hbm) {
                    ++result.too_big;
                    continue;
                  }
                  Workload w = lower_training(model, shapes, plan, layout, cluster);
                  TrainingEstimate priced = price_training_stages(w, costs, &cache);
                  ++result.evaluated;
                  const double bound = step_time_lower_bound(priced, w, costs, cluster);
                  // Only the bound is kept: the few candidates scheduled are lowered and priced again (from
                  // the cache), rather than holding every candidate's stage prices.
                  candidates.push_back({bound, std::move(plan), std::move(layout), std::move(memory)});
                }
              }
            }
          }
        }
      }
    }
  }
  // Schedule the candidates in the order of their lower bound until the next bound cannot beat
  // the slowest of the `top` kept: the same ranking as scheduling every candidate.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.lower_bound_s < b.lower_bound_s; });
  struct Ranked {
    double step_time_s;
    std::size_t candidate;
  };
  std::vector<Ranked> top;  // fastest first, at most `top`
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (top.size() >= req.top && c.lower_bound_s >= top.back().step_time_s) break;
    const Workload w = lower_training(model, shapes, c.plan, c.layout, cluster);
    TrainingEstimate e = price_training_stages(w, costs, &cache);
    schedule_training(e, w, costs, cluster, c.memory, {}, false);  // the breakdown only for the plans kept
    ++result.scheduled;
    auto pos = std::lower_bound(top.begin(), top.end(), e.step_time_s,
                                [](const Ranked& a, double t) { return a.step_time_s < t; });
    if (static_cast<std::size_t>(pos - top.begin()) < req.top) {
      top.insert(pos, {e.step_time_s, i});
      if (top.size() > req.top) top.pop_back();
    }
  }
  for (const Ranked& r : top) {
    Candidate& c = candidates[r.candidate];
    const Workload w = lower_training(model, shapes, c.plan, c.layout, cluster);
    TrainingEstimate e = price_training_stages(w, costs, &cache);
    schedule_training(e, w, costs, cluster, c.memory);
    result.best.push_back({std::move(c.plan), std::move(c.layout), std::move(e)});
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace clustersim
