#include "models/inputs/parallel_layout.hpp"

#include <fmt/format.h>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

std::int64_t ParallelLayout::layers_on_rank(std::int64_t pp_rank) const {
  std::int64_t n = 0;
  for (const auto& c : chunks.at(static_cast<std::size_t>(pp_rank))) n += c.num_layers;
  return n;
}

Dtype compute_dtype(const TrainPlan& plan) {
  if (plan.fp8_format != Fp8Format::kNone) return Dtype::kFp8;
  switch (plan.precision) {
    case Precision::kBf16: return Dtype::kBf16;
    case Precision::kFp16: return Dtype::kFp16;
    case Precision::kFp32: return Dtype::kFp32;
  }
  return Dtype::kFp32;
}

namespace {

// Collects errors against the plan file.
struct PlanChecker {
  Diagnostics& diag;
  const std::string& file;
  void error(std::string_view key, std::string message, std::string hint = {}) {
    diag.error(file, key.empty() ? "" : json_pointer_append("", key), std::move(message),
               std::move(hint));
  }
};

// "divisors of 64: 1, 2, 4, 8, 16, 32, 64", the smallest twelve when there are more.
std::string divisors_hint(std::int64_t n) {
  std::vector<std::int64_t> d;
  for (std::int64_t i = 1; i <= n && d.size() < 13; ++i) {
    if (n % i == 0) d.push_back(i);
  }
  if (d.size() > 12) {
    d.pop_back();
    return fmt::format("divisors of {}: {}, ...", n, fmt::join(d, ", "));
  }
  return fmt::format("divisors of {}: {}", n, fmt::join(d, ", "));
}

// Model-shape flags (e.g. from a pasted Megatron command line) must agree with the model.
void check_model_flags(const ModelSpec& m, const TrainPlan& p, PlanChecker& check) {
  auto same = [&](std::string_view key, const std::optional<std::int64_t>& given,
                  std::int64_t model_value, std::string_view model_key) {
    if (given && *given != model_value) {
      check.error(key, fmt::format("{} contradicts the model ({}={} in {})", *given, model_key,
                                   model_value, m.source),
                  "remove the flag or use a model config that matches it");
    }
  };
  same("num_layers", p.num_layers, m.num_layers, "num_hidden_layers");
  same("hidden_size", p.hidden_size, m.hidden_size, "hidden_size");
  same("num_attention_heads", p.num_attention_heads, m.num_attention_heads, "num_attention_heads");
  same("num_query_groups", p.num_query_groups, m.num_key_value_heads, "num_key_value_heads");
  if (m.num_moe_layers() < m.num_layers) {
    same("ffn_hidden_size", p.ffn_hidden_size, m.intermediate_size, "intermediate_size");
  }
  same("num_experts", p.num_experts, m.num_experts, "num_experts");
  if (m.is_moe()) {
    same("moe_ffn_hidden_size", p.moe_ffn_hidden_size, m.moe_intermediate_size,
         "moe_intermediate_size");
    same("moe_router_topk", p.moe_router_topk, m.num_experts_per_tok, "num_experts_per_tok");
  } else if (p.moe_router_topk) {
    check.error("moe_router_topk", "the model is dense (no experts)", "remove it");
  }
}

// Megatron-LM's account_for_embedding/loss_in_pipeline_split: the embedding and the loss each
// count as a layer, the total splits evenly over PP x VPP chunks, and the first chunk of the
// first stage and the last chunk of the last stage hold one layer fewer for each.
bool assign_layers_with_embedding_and_loss(const ModelSpec& m, const TrainPlan& p, ParallelLayout& L,
                                           PlanChecker& check) {
  const bool embedding = p.account_for_embedding_in_pipeline_split, loss = p.account_for_loss_in_pipeline_split;
  if (!embedding && !loss) return false;
  const std::int64_t pp = L.pp;
  const char* key = embedding ? "account_for_embedding_in_pipeline_split" : "account_for_loss_in_pipeline_split";
  if (p.decoder_first_pipeline_num_layers || p.decoder_last_pipeline_num_layers || p.num_layers_per_virtual_pipeline_stage) {
    check.error(key, "given with decoder_first/last_pipeline_num_layers or num_layers_per_virtual_pipeline_stage",
                "use num_virtual_stages_per_pipeline_rank with it, or split the layers by hand");
    return true;
  }
  const std::int64_t v = p.num_virtual_stages_per_pipeline_rank.value_or(1);
  const std::int64_t total = m.num_layers + (embedding ? 1 : 0) + (loss ? 1 : 0);
  if (total % (pp * v) != 0) {
    check.error(key, fmt::format("{} layers with the embedding and loss do not split over {} x {} pipeline chunks",
                                 total, pp, v),
                "choose pipeline_model_parallel_size x num_virtual_stages_per_pipeline_rank dividing " +
                    std::to_string(total));
    return true;
  }
  const std::int64_t per_chunk = total / (pp * v);
  if (per_chunk <= 1) {
    check.error(key, "a chunk of the first or last stage would hold no layer", "use fewer pipeline chunks");
    return true;
  }
  L.virtual_stages = v;
  L.chunks.assign(static_cast<std::size_t>(pp), std::vector<PipelineChunk>(static_cast<std::size_t>(v)));
  std::int64_t next = 0;
  for (std::int64_t c = 0; c < v; ++c) {
    for (std::int64_t r = 0; r < pp; ++r) {
      std::int64_t n = per_chunk;
      if (embedding && c == 0 && r == 0) --n;
      if (loss && c == v - 1 && r == pp - 1) --n;
      L.chunks[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = {next, n};
      next += n;
    }
  }
  return true;
}

void assign_layers(const ModelSpec& m, const TrainPlan& p, ParallelLayout& L, PlanChecker& check) {
  if (assign_layers_with_embedding_and_loss(m, p, L, check)) return;
  const std::int64_t pp = L.pp, layers = m.num_layers;
  if (p.num_layers_per_virtual_pipeline_stage || p.num_virtual_stages_per_pipeline_rank) {
    if (pp == 1) {
      check.error(p.num_layers_per_virtual_pipeline_stage ? "num_layers_per_virtual_pipeline_stage"
                                                          : "num_virtual_stages_per_pipeline_rank",
                  "virtual pipeline stages need pipeline_model_parallel_size > 1",
                  "remove it, or use pipeline parallelism");
      return;
    }
  }
  const bool has_first = p.decoder_first_pipeline_num_layers.has_value();
  const bool has_last = p.decoder_last_pipeline_num_layers.has_value();
  if ((has_first || has_last) && pp == 1) {
    check.error(has_first ? "decoder_first_pipeline_num_layers" : "decoder_last_pipeline_num_layers",
                "uneven pipeline stages need pipeline_model_parallel_size > 1", "remove it");
    return;
  }
  std::int64_t first = p.decoder_first_pipeline_num_layers.value_or(0);
  std::int64_t last = p.decoder_last_pipeline_num_layers.value_or(0);
  std::int64_t middle_ranks = pp - (has_first ? 1 : 0) - (has_last ? 1 : 0);
  std::int64_t middle_layers = layers - first - last;
  if (middle_layers < 0 || (middle_ranks == 0 && middle_layers != 0)) {
    check.error(has_last ? "decoder_last_pipeline_num_layers" : "decoder_first_pipeline_num_layers",
                fmt::format("first and last stages take {} + {} layers; the model has {} for {} "
                            "pipeline stages",
                            first, last, layers, pp),
                "the layers must add up to num_hidden_layers");
    return;
  }
  std::int64_t per_middle = 0;
  if (middle_ranks > 0) {
    if (middle_layers % middle_ranks != 0) {
      if (has_first || has_last) {
        check.error("pipeline_model_parallel_size",
                    fmt::format("{} layers left after the first/last stages do not split evenly "
                                "over {} middle stages",
                                middle_layers, middle_ranks),
                    "adjust decoder_first_pipeline_num_layers / decoder_last_pipeline_num_layers");
      } else {
        check.error("pipeline_model_parallel_size",
                    fmt::format("{} does not divide num_hidden_layers={}", pp, layers),
                    fmt::format("{}; or set decoder_first_pipeline_num_layers / "
                                "decoder_last_pipeline_num_layers",
                                divisors_hint(layers)));
      }
      return;
    }
    per_middle = middle_layers / middle_ranks;
  }
  std::vector<std::int64_t> per_rank(static_cast<std::size_t>(pp), per_middle);
  if (has_first) per_rank.front() = first;
  if (has_last) per_rank.back() = last;

  std::int64_t v = 1;
  if (p.num_virtual_stages_per_pipeline_rank) v = *p.num_virtual_stages_per_pipeline_rank;
  if (p.num_layers_per_virtual_pipeline_stage) {
    std::int64_t lpv = *p.num_layers_per_virtual_pipeline_stage;
    if (per_rank.front() % lpv != 0 || per_middle % lpv != 0) {
      check.error("num_layers_per_virtual_pipeline_stage",
                  fmt::format("{} does not divide the {} layers of each pipeline stage", lpv,
                              per_middle ? per_middle : per_rank.front()),
                  divisors_hint(per_middle ? per_middle : per_rank.front()));
      return;
    }
    v = (per_middle ? per_middle : per_rank.front()) / lpv;
  }
  for (std::int64_t r = 0; r < pp; ++r) {
    if (per_rank[static_cast<std::size_t>(r)] % v != 0) {
      check.error(p.num_virtual_stages_per_pipeline_rank ? "num_virtual_stages_per_pipeline_rank"
                                                         : "num_layers_per_virtual_pipeline_stage",
                  fmt::format("pipeline stage {} has {} layers, which do not split into {} "
                              "virtual stages",
                              r, per_rank[static_cast<std::size_t>(r)], v),
                  "every stage's layer count must be a multiple of the virtual stages per rank");
      return;
    }
  }
  L.virtual_stages = v;
  // Interleaved order: virtual stage k = c * pp + r holds the k-th block of layers.
  L.chunks.assign(static_cast<std::size_t>(pp), std::vector<PipelineChunk>(static_cast<std::size_t>(v)));
  std::int64_t next = 0;
  for (std::int64_t c = 0; c < v; ++c) {
    for (std::int64_t r = 0; r < pp; ++r) {
      std::int64_t n = per_rank[static_cast<std::size_t>(r)] / v;
      L.chunks[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = {next, n};
      next += n;
    }
  }
}

}  // namespace

ParallelLayout derive_layout(const ModelSpec& m, const TrainPlan& p, const ClusterSpec* cluster,
                             std::int64_t world, Diagnostics& diag) {
  std::optional<ParallelLayout> layout = try_derive_layout(m, p, cluster, world, diag);
  diag.throw_if_errors();
  return std::move(*layout);
}

std::optional<ParallelLayout> try_derive_layout(const ModelSpec& m, const TrainPlan& p, const ClusterSpec* cluster,
                                                std::int64_t world, Diagnostics& diag) {
  PlanChecker check{diag, p.source};
  ParallelLayout L;
  L.world = world;
  L.tp = p.tp();
  L.pp = p.pp();
  L.cp = p.cp();
  L.ep = p.ep();
  L.etp = p.etp();
  L.micro_batch_size = p.micro_batch_size;
  L.seq_length = p.seq_length;

  check_model_flags(m, p, check);

  // World size.
  const std::int64_t model_parallel = L.tp * L.pp * L.cp;
  if (world % model_parallel != 0) {
    check.error("", fmt::format("TP*PP*CP = {}*{}*{} = {} does not divide --gpus {}", L.tp, L.pp,
                                L.cp, model_parallel, world),
                "the data-parallel size, world / (TP*PP*CP), must be a whole number");
  } else {
    L.dp = world / model_parallel;
  }

  // Attention heads and MLP widths vs tensor parallelism.
  if (m.num_attention_heads % L.tp != 0) {
    check.error("tensor_model_parallel_size",
                fmt::format("{} does not divide num_attention_heads={}", L.tp, m.num_attention_heads),
                divisors_hint(m.num_attention_heads));
  } else if (m.attention == AttentionKind::kMultiHead && m.num_key_value_heads % L.tp != 0) {
    check.error("tensor_model_parallel_size",
                fmt::format("{} does not divide num_key_value_heads={}", L.tp, m.num_key_value_heads),
                divisors_hint(m.num_key_value_heads));
  }
  if (m.num_moe_layers() < m.num_layers && m.intermediate_size % L.tp != 0) {
    check.error("tensor_model_parallel_size",
                fmt::format("{} does not divide intermediate_size={}", L.tp, m.intermediate_size),
                divisors_hint(m.intermediate_size));
  }

  // Experts.
  if (!m.is_moe()) {
    if (p.moe_routing) check.error("moe_routing", "the model is dense (no experts)", "remove it");
    if (p.moe_expert_capacity_factor) {
      check.error("moe_expert_capacity_factor", "the model is dense (no experts)", "remove it");
    }
    if (L.ep > 1) {
      check.error("expert_model_parallel_size",
                  fmt::format("{} but the model has no experts", L.ep), "1 for a dense model");
    }
    if (p.expert_tensor_parallel_size && *p.expert_tensor_parallel_size != L.tp) {
      check.error("expert_tensor_parallel_size", "set but the model has no experts", "remove it");
    }
  } else {
    if (m.num_experts % L.ep != 0) {
      check.error("expert_model_parallel_size",
                  fmt::format("{} does not divide num_experts={}", L.ep, m.num_experts),
                  divisors_hint(m.num_experts));
    }
    if (p.moe_routing && p.moe_routing->kind == RoutingKind::kHistogram && !p.moe_routing->histogram.empty() &&
        static_cast<std::int64_t>(p.moe_routing->histogram.size()) != m.num_experts) {
      check.diag.error(p.moe_routing->histogram_file, "/tokens_per_expert",
                       fmt::format("{} counts for a model of {} experts", p.moe_routing->histogram.size(),
                                   m.num_experts),
                       fmt::format("one count per expert: {} numbers (num_experts in {})", m.num_experts, m.source));
    }
    if (m.moe_intermediate_size % L.etp != 0) {
      check.error(p.expert_tensor_parallel_size ? "expert_tensor_parallel_size"
                                                : "tensor_model_parallel_size",
                  fmt::format("expert tensor parallelism {} does not divide moe_intermediate_size={}",
                              L.etp, m.moe_intermediate_size),
                  divisors_hint(m.moe_intermediate_size));
    }
    if (L.dp > 0 && world % model_parallel == 0) {
      std::int64_t expert_ranks = L.tp * L.cp * L.dp;
      if (expert_ranks % (L.ep * L.etp) != 0) {
        check.error("expert_model_parallel_size",
                    fmt::format("EP*ETP = {}*{} = {} does not divide the TP*CP*DP = {} ranks of a "
                                "pipeline stage that host experts",
                                L.ep, L.etp, L.ep * L.etp, expert_ranks),
                    "choose EP and ETP whose product divides TP*CP*DP");
      } else {
        L.expert_dp = expert_ranks / (L.ep * L.etp);
      }
    }
  }

  // Layers across pipeline stages.
  assign_layers(m, p, L, check);
  if (!L.chunks.empty() && p.recompute_num_layers) {
    std::int64_t per_chunk = L.chunks[0][0].num_layers;
    for (const auto& rank : L.chunks) per_chunk = std::max(per_chunk, rank[0].num_layers);
    if (*p.recompute_num_layers > per_chunk) {
      check.error("recompute_num_layers",
                  fmt::format("{} exceeds the {} layers of a pipeline chunk", *p.recompute_num_layers,
                              per_chunk),
                  fmt::format("an integer in [1, {}]", per_chunk));
    }
  }

  // Batch.
  L.global_batch_size = p.global_batch_size.value_or(p.micro_batch_size * L.dp);
  const std::int64_t step = p.micro_batch_size * L.dp;
  if (L.dp > 0 && L.global_batch_size % step != 0) {
    const std::int64_t below = L.global_batch_size / step * step, above = below + step;
    check.error("global_batch_size",
                fmt::format("{} is not a multiple of micro_batch_size * DP = {} * {} = {}",
                            L.global_batch_size, p.micro_batch_size, L.dp, step),
                below > 0 ? fmt::format("e.g. {} or {}", below, above) : fmt::format("e.g. {}", above));
  } else if (L.dp > 0) {
    L.num_microbatches = L.global_batch_size / step;
    // The interleaved schedule runs micro-batches in groups of PP (Megatron-LM's rule): with more
    // micro-batches than pipeline stages, their count must be a multiple of PP.
    if (L.virtual_stages > 1 && L.num_microbatches > L.pp && L.num_microbatches % L.pp != 0) {
      const std::int64_t group = step * L.pp;
      const std::int64_t below = L.global_batch_size / group * group;
      check.error("global_batch_size",
                  fmt::format("{} gives {} micro-batches, which the interleaved schedule "
                              "(num_virtual_stages_per_pipeline_rank {}) cannot run in groups of "
                              "pipeline_model_parallel_size = {}",
                              L.global_batch_size, L.num_microbatches, L.virtual_stages, L.pp),
                  fmt::format("a multiple of micro_batch_size * DP * PP = {}, e.g. {} or {}; or at most "
                              "PP micro-batches; or no interleaving",
                              group, below, below + group));
    }
  }

  // Sequence vs context and sequence parallelism.
  if (L.cp > 1 && p.seq_length % (2 * L.cp) != 0) {
    check.error("seq_length",
                fmt::format("{} is not a multiple of 2*context_parallel_size = {}", p.seq_length,
                            2 * L.cp),
                "causal context parallelism splits the sequence into 2*CP balanced chunks");
  } else if (p.sequence_parallel && L.tp > 1 && (p.seq_length / L.cp) % L.tp != 0) {
    check.error("seq_length",
                fmt::format("the {} tokens per context-parallel rank do not split over "
                            "tensor_model_parallel_size={} for sequence parallelism",
                            p.seq_length / L.cp, L.tp),
                fmt::format("seq_length a multiple of CP*TP = {}", L.cp * L.tp));
  }
  if (m.max_position_embeddings > 0 && p.seq_length > m.max_position_embeddings) {
    diag.warn(p.source, "/seq_length",
              fmt::format("{} exceeds the model's max_position_embeddings={}", p.seq_length,
                          m.max_position_embeddings));
  }
  if (p.sequence_parallel && L.tp == 1) {
    diag.warn(p.source, "/sequence_parallel",
              "has no effect with tensor_model_parallel_size 1 (Megatron-LM turns it off)");
  }
  if (p.moe_routing_imbalance != 1.0 && !m.is_moe()) {
    check.error("moe_routing_imbalance", "the model is dense (no experts)", "remove it");
  } else if (p.moe_routing_imbalance > static_cast<double>(L.ep)) {
    check.error("moe_routing_imbalance",
                fmt::format("{} exceeds expert_model_parallel_size={}: the busiest rank cannot receive more "
                            "than every routed token",
                            p.moe_routing_imbalance, L.ep),
                fmt::format("a ratio from 1 to {}", L.ep));
  }
  if (p.tp_comm_overlap && (!p.sequence_parallel || L.tp == 1)) {
    check.error("tp_comm_overlap", "needs sequence_parallel: true and tensor_model_parallel_size > 1",
                "tensor-parallel communication overlap works on sequence-parallel all-gathers and "
                "reduce-scatters");
  }

  // Cluster-dependent rules.
  if (cluster) {
    Dtype dtype = compute_dtype(p);
    if (!cluster->gpu.peak_flops_per_s(dtype)) {
      check.error(p.fp8_format != Fp8Format::kNone ? "fp8_format"
                  : p.precision == Precision::kBf16 ? "bf16"
                  : p.precision == Precision::kFp16 ? "fp16"
                                                     : "",
                  fmt::format("{} ({}) has no {} peak", cluster->gpu.name, cluster->name,
                              to_string(dtype)),
                  "use a precision the GPU supports");
    }
    if (L.tp > cluster->node.gpus_per_node) {
      diag.warn(p.source, "/tensor_model_parallel_size",
                fmt::format("{} spans nodes of {} GPUs: tensor-parallel traffic leaves NVLink",
                            L.tp, cluster->node.gpus_per_node));
    }
  }

  if (diag.has_errors()) return std::nullopt;
  return L;
}

}  // namespace clustersim
