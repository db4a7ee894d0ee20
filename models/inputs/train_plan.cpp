#include "models/inputs/train_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

std::string to_string(ParallelDim dim) {
  switch (dim) {
    case ParallelDim::kTp: return "tp";
    case ParallelDim::kCp: return "cp";
    case ParallelDim::kEp: return "ep";
    case ParallelDim::kDp: return "dp";
    case ParallelDim::kPp: return "pp";
  }
  return "?";
}

std::string rank_order_string(const std::array<ParallelDim, 5>& order) {
  std::vector<std::string> names;
  for (auto d : order) names.push_back(to_string(d));
  return fmt::format("{}", fmt::join(names, "-"));
}

namespace {

constexpr std::int64_t kMaxParallel = 1 << 20;

std::optional<std::array<ParallelDim, 5>> parse_rank_order(const std::string& text) {
  std::array<ParallelDim, 5> order{};
  std::set<std::string> seen;
  std::size_t n = 0, start = 0;
  while (start <= text.size()) {
    auto end = text.find('-', start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    ParallelDim d;
    if (part == "tp") d = ParallelDim::kTp;
    else if (part == "cp") d = ParallelDim::kCp;
    else if (part == "ep") d = ParallelDim::kEp;
    else if (part == "dp") d = ParallelDim::kDp;
    else if (part == "pp") d = ParallelDim::kPp;
    else return std::nullopt;
    if (n >= 5 || !seen.insert(part).second) return std::nullopt;
    order[n++] = d;
    start = end + 1;
  }
  if (n != 5) return std::nullopt;
  return order;
}

// Reads the plan object. Shared by plan files and pasted Megatron command lines.
// Megatron-LM's gradient-precision flags and its precision-aware optimizer's state dtypes.
void read_gradient_and_optimizer_precision(JsonObjectReader& r, TrainPlan& p) {
  p.grad_reduce_in_bf16 = r.boolean("grad_reduce_in_bf16").value_or(false);
  p.accumulate_allreduce_grads_in_fp32 = r.boolean("accumulate_allreduce_grads_in_fp32").value_or(false);
  if (p.grad_reduce_in_bf16 && p.precision != Precision::kBf16) {
    r.error("grad_reduce_in_bf16", "needs bf16: true", "remove it, or train in bf16");
  }
  if (p.grad_reduce_in_bf16 && p.accumulate_allreduce_grads_in_fp32) {
    r.error("grad_reduce_in_bf16", "contradicts accumulate_allreduce_grads_in_fp32: true", "keep one of them");
  }
  p.use_precision_aware_optimizer = r.boolean("use_precision_aware_optimizer").value_or(false);
  auto state_bytes = [&](const char* key, std::initializer_list<std::string_view> names, double& bytes) {
    auto name = r.choice(key, names);
    if (!name) return;
    if (!p.use_precision_aware_optimizer) {
      r.error(key, "only applies with use_precision_aware_optimizer: true",
              "set use_precision_aware_optimizer to true, or remove it");
    }
    bytes = *name == "fp32" ? 4.0 : *name == "fp8" ? 1.0 : 2.0;
  };
  state_bytes("main_grads_dtype", {"fp32", "bf16"}, p.main_grads_bytes);
  state_bytes("main_params_dtype", {"fp32", "fp16"}, p.main_params_bytes);
  state_bytes("exp_avg_dtype", {"fp32", "fp16", "bf16", "fp8"}, p.exp_avg_bytes);
  state_bytes("exp_avg_sq_dtype", {"fp32", "fp16", "bf16", "fp8"}, p.exp_avg_sq_bytes);
  if (p.main_grads_bytes < 4 && p.accumulate_allreduce_grads_in_fp32) {
    r.error("main_grads_dtype", "must be fp32 with accumulate_allreduce_grads_in_fp32: true",
            "\"fp32\", or drop accumulate_allreduce_grads_in_fp32");
  }
}

// moe_routing (with its seed and, for a histogram, the file it names), the capacity factor and
// padding. Cross-checks with the model (expert count) are in parallel_layout.cpp.
// A histogram path is relative to the plan file's folder (to the working directory for an
// inline plan).
void read_moe_routing(JsonObjectReader& r, TrainPlan& p, const std::string& plan_file) {
  const auto seed = r.integer("moe_routing_seed", 0, INT64_MAX);
  if (auto text = r.string("moe_routing")) {
    if (auto parsed = parse_routing(*text)) {
      p.moe_routing = *parsed;
      if (seed) p.moe_routing->seed = static_cast<std::uint64_t>(*seed);
      if (parsed->kind == RoutingKind::kHistogram) {
        std::filesystem::path path(parsed->histogram_file);
        if (path.is_relative() && !looks_like_inline_json(plan_file) && std::filesystem::exists(plan_file)) {
          path = std::filesystem::path(plan_file).parent_path() / path;
        }
        p.moe_routing->histogram_file = path.string();
        p.moe_routing->histogram = load_routing_histogram(path.string(), r.diagnostics());
      }
    } else {
      r.error("moe_routing", fmt::format("\"{}\" is not a routing model", *text), std::string(routing_forms()));
    }
    if (p.moe_routing_imbalance != 1.0) {
      r.error("moe_routing_imbalance", "given together with moe_routing",
              "give one: moe_routing derives the busiest rank's share from the routing model");
    }
  } else if (seed) {
    r.error("moe_routing_seed", "given without moe_routing", "set moe_routing to a random routing model");
  }
  if (auto cf = r.number("moe_expert_capacity_factor", -1e9, 1e9)) {
    if (*cf <= 0) {
      r.error("moe_expert_capacity_factor", fmt::format("{} is not a capacity factor", *cf),
              "a number > 0 (1 = each expert takes its balanced share); leave it out for dropless");
    } else {
      p.moe_expert_capacity_factor = *cf;
    }
  }
  p.moe_pad_expert_input_to_capacity = r.boolean("moe_pad_expert_input_to_capacity").value_or(false);
  if (p.moe_pad_expert_input_to_capacity && !r.has("moe_expert_capacity_factor")) {
    r.error("moe_pad_expert_input_to_capacity", "needs moe_expert_capacity_factor",
            "padding fills each expert to its capacity: set the capacity factor");
  }
}

TrainPlan read_plan(JsonObjectReader& r, const std::string& source) {
  TrainPlan p;
  p.source = source;
  p.tensor_model_parallel_size = r.integer("tensor_model_parallel_size", 1, kMaxParallel).value_or(1);
  p.pipeline_model_parallel_size =
      r.integer("pipeline_model_parallel_size", 1, kMaxParallel).value_or(1);
  p.context_parallel_size = r.integer("context_parallel_size", 1, kMaxParallel).value_or(1);
  p.expert_model_parallel_size = r.integer("expert_model_parallel_size", 1, kMaxParallel).value_or(1);
  p.expert_tensor_parallel_size = r.integer("expert_tensor_parallel_size", 1, kMaxParallel);
  p.num_layers_per_virtual_pipeline_stage =
      r.integer("num_layers_per_virtual_pipeline_stage", 1, kMaxParallel);
  p.num_virtual_stages_per_pipeline_rank =
      r.integer("num_virtual_stages_per_pipeline_rank", 1, kMaxParallel);
  if (p.num_layers_per_virtual_pipeline_stage && p.num_virtual_stages_per_pipeline_rank) {
    r.error("num_virtual_stages_per_pipeline_rank",
            "given together with num_layers_per_virtual_pipeline_stage",
            "give one of the two: they say the same thing two ways");
  }
  p.decoder_first_pipeline_num_layers =
      r.integer("decoder_first_pipeline_num_layers", 0, kMaxParallel);
  p.decoder_last_pipeline_num_layers =
      r.integer("decoder_last_pipeline_num_layers", 0, kMaxParallel);
  p.account_for_embedding_in_pipeline_split = r.boolean("account_for_embedding_in_pipeline_split").value_or(false);
  p.account_for_loss_in_pipeline_split = r.boolean("account_for_loss_in_pipeline_split").value_or(false);

  p.micro_batch_size = r.integer("micro_batch_size", 1, kMaxParallel).value_or(1);
  p.global_batch_size = r.integer("global_batch_size", 1, std::int64_t{1} << 40);
  p.seq_length = r.required_integer("seq_length", 1, std::int64_t{1} << 32).value_or(0);

  p.sequence_parallel = r.boolean("sequence_parallel").value_or(false);
  if (auto g = r.choice("recompute_granularity", {"full", "selective"})) {
    p.recompute_granularity = *g == "full" ? Recompute::kFull : Recompute::kSelective;
  }
  if (auto m = r.choice("recompute_method", {"uniform", "block"})) {
    p.recompute_method = *m == "block" ? RecomputeMethod::kBlock : RecomputeMethod::kUniform;
    if (p.recompute_granularity != Recompute::kFull) {
      r.error("recompute_method", "only applies to recompute_granularity \"full\"",
              "remove it, or set recompute_granularity to \"full\"");
    }
  }
  p.recompute_num_layers = r.integer("recompute_num_layers", 1, kMaxParallel);
  if (p.recompute_num_layers && p.recompute_granularity != Recompute::kFull) {
    r.error("recompute_num_layers", "only applies to recompute_granularity \"full\"",
            "remove it, or set recompute_granularity to \"full\"");
  }
  if (p.recompute_granularity == Recompute::kFull && !r.has("recompute_method")) {
    r.error("recompute_method", "required with recompute_granularity \"full\"",
            "\"uniform\" or \"block\"");
  }
  if (p.recompute_granularity == Recompute::kFull && !p.recompute_num_layers) {
    r.error("recompute_num_layers", "required with recompute_granularity \"full\"",
            "uniform: layers per checkpointed group; block: layers recomputed per stage");
  }

  p.use_distributed_optimizer = r.boolean("use_distributed_optimizer").value_or(false);
  auto sharding = r.choice("data_parallel_sharding_strategy",
                           {"no_shard", "optim", "optim_grads", "optim_grads_params"});
  if (!sharding) {
    p.data_parallel_sharding_strategy =
        p.use_distributed_optimizer ? DpSharding::kOptim : DpSharding::kNoShard;
  } else {
    p.data_parallel_sharding_strategy = *sharding == "no_shard"      ? DpSharding::kNoShard
                                        : *sharding == "optim"       ? DpSharding::kOptim
                                        : *sharding == "optim_grads" ? DpSharding::kOptimGrads
                                                                     : DpSharding::kOptimGradsParams;
    bool sharded = p.data_parallel_sharding_strategy != DpSharding::kNoShard;
    if (sharded && !p.use_distributed_optimizer) {
      r.error("data_parallel_sharding_strategy",
              fmt::format("\"{}\" shards optimizer state but use_distributed_optimizer is not true",
                          *sharding),
              "set use_distributed_optimizer to true, or use \"no_shard\"");
    }
    if (!sharded && p.use_distributed_optimizer) {
      r.error("data_parallel_sharding_strategy",
              "\"no_shard\" contradicts use_distributed_optimizer: true",
              "use \"optim\" (ZeRO-1) or set use_distributed_optimizer to false");
    }
  }
  p.overlap_grad_reduce = r.boolean("overlap_grad_reduce").value_or(false);
  p.overlap_param_gather = r.boolean("overlap_param_gather").value_or(false);
  if (p.overlap_param_gather && !p.use_distributed_optimizer) {
    r.error("overlap_param_gather", "needs use_distributed_optimizer: true",
            "parameters are only all-gathered when the optimizer is distributed");
  }
  p.ddp_bucket_size = r.integer("ddp_bucket_size", 1, INT64_MAX);
  p.tp_comm_overlap = r.boolean("tp_comm_overlap").value_or(false);
  p.cross_entropy_loss_fusion = r.boolean("cross_entropy_loss_fusion").value_or(false);
  p.overlap_p2p_comm = r.boolean("overlap_p2p_comm").value_or(true);
  p.moe_shared_expert_overlap = r.boolean("moe_shared_expert_overlap").value_or(false);
  p.overlap_moe_expert_parallel_comm = r.boolean("overlap_moe_expert_parallel_comm").value_or(false);
  p.delay_wgrad_compute = r.boolean("delay_wgrad_compute").value_or(false);
  if (p.delay_wgrad_compute && !p.overlap_moe_expert_parallel_comm) {
    // Megatron-LM asserts the same (TransformerConfig.__post_init__).
    r.error("delay_wgrad_compute", "needs overlap_moe_expert_parallel_comm: true",
            "weight gradients are only delayed inside the combined 1F1B schedule of the EP overlap");
  }

  bool bf16 = r.boolean("bf16").value_or(false);
  bool fp16 = r.boolean("fp16").value_or(false);
  if (bf16 && fp16) r.error("fp16", "bf16 and fp16 are both true", "choose one");
  p.precision = bf16 ? Precision::kBf16 : fp16 ? Precision::kFp16 : Precision::kFp32;
  if (auto f = r.choice("fp8_format", {"e4m3", "hybrid"})) {
    p.fp8_format = *f == "e4m3" ? Fp8Format::kE4m3 : Fp8Format::kHybrid;
    if (!bf16 && !fp16) {
      r.error("fp8_format", "FP8 training needs bf16 or fp16 as its higher precision",
              "set \"bf16\": true");
    }
  }
  read_gradient_and_optimizer_precision(r, p);
  if (auto b = r.choice("attention_backend", {"auto", "flash", "fused", "unfused", "local"})) {
    p.attention_backend = *b == "flash"     ? AttentionBackend::kFlash
                          : *b == "fused"   ? AttentionBackend::kFused
                          : *b == "unfused" ? AttentionBackend::kUnfused
                          : *b == "local"   ? AttentionBackend::kLocal
                                            : AttentionBackend::kAuto;
  }
  p.reset_attention_mask = r.boolean("reset_attention_mask").value_or(false);
  p.document_lengths = read_document_lengths(r, "document_lengths", source);
  if (p.document_lengths && !p.reset_attention_mask) {
    r.error("document_lengths", "changes nothing without reset_attention_mask: true",
            "with reset_attention_mask each document attends only to itself; without it every sequence costs a full causal attention");
  }
  if (p.reset_attention_mask && !r.has("document_lengths")) {
    r.diagnostics().warn(r.file(), r.pointer_of("reset_attention_mask"),
                         "without document_lengths, attention is priced as one document per sequence",
                         "give a histogram of document lengths (docs/plan-format.md)");
  }
  p.attention_dropout = r.number("attention_dropout", 0.0, 1.0);
  p.hidden_dropout = r.number("hidden_dropout", 0.0, 1.0);

  p.moe_router_topk = r.integer("moe_router_topk", 1, INT64_MAX);
  p.moe_token_dispatcher_type =
      r.choice("moe_token_dispatcher_type", {"allgather", "alltoall", "flex"}).value_or("alltoall");
  p.moe_routing_imbalance = r.number("moe_routing_imbalance", 1.0, 1e6).value_or(1.0);
  read_moe_routing(r, p, source);

  if (auto order = r.string("rank_order")) {
    if (auto parsed = parse_rank_order(*order)) {
      p.rank_order = *parsed;
    } else {
      r.error("rank_order", fmt::format("\"{}\" is not an order of tp, cp, ep, dp, pp", *order),
              "each of tp, cp, ep, dp, pp exactly once, joined by '-', e.g. \"tp-cp-ep-dp-pp\"");
    }
  }

  p.num_layers = r.integer("num_layers", 1, INT64_MAX);
  p.hidden_size = r.integer("hidden_size", 1, INT64_MAX);
  p.num_attention_heads = r.integer("num_attention_heads", 1, INT64_MAX);
  p.num_query_groups = r.integer("num_query_groups", 1, INT64_MAX);
  p.ffn_hidden_size = r.integer("ffn_hidden_size", 1, INT64_MAX);
  p.num_experts = r.integer("num_experts", 1, INT64_MAX);
  p.moe_ffn_hidden_size = r.integer("moe_ffn_hidden_size", 1, INT64_MAX);
  r.allow({"description", "group_query_attention"});
  return p;
}

}  // namespace

TrainPlan load_train_plan(const std::string& source, Diagnostics& diag) {
  JsonDocument doc = read_json_document(source, "--plan");
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  TrainPlan plan = read_plan(r, doc.file);
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return plan;
}

std::vector<std::pair<std::string, std::string>> unknown_plan_keys(const nlohmann::json& plan) {
  Diagnostics scratch;  // what the values would make of the plan is the grid's points' business
  JsonObjectReader r(scratch, "grid", "", plan);
  read_plan(r, "grid");
  std::vector<std::pair<std::string, std::string>> unknown;
  for (const auto& key : r.unknown_keys()) unknown.emplace_back(key, r.unknown_key_hint(key));
  return unknown;
}

namespace {

// Splits a pasted shell command line into words: quotes, backslash escapes and line
// continuations as a POSIX shell would treat them (no expansion).
std::vector<std::string> shell_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size()) {
        word += text[++i];
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      char next = text[++i];
      if (next != '\n') {
        word += next;
        in_word = true;
      }
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

nlohmann::json megatron_value(const std::string& text) {
  char* end = nullptr;
  long long i = std::strtoll(text.c_str(), &end, 10);
  if (!text.empty() && *end == '\0') return i;
  double d = std::strtod(text.c_str(), &end);
  if (!text.empty() && *end == '\0') return d;
  return text;
}

}  // namespace

TrainPlan train_plan_from_megatron_args(const std::string& command_line, Diagnostics& diag) {
  const std::string file = "--from-megatron-args";
  nlohmann::json object = nlohmann::json::object();
  std::vector<std::string> flags_in_order;  // as typed, for the warning
  std::map<std::string, std::string> typed;  // snake_case key -> flag as typed
  std::vector<std::string> words = shell_words(command_line);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (!w.starts_with("--")) continue;  // launcher, script name, or a stray value
    std::string flag = w.substr(2), value;
    bool has_value = false;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    } else if (i + 1 < words.size() && !words[i + 1].starts_with("--")) {
      value = words[++i];
      has_value = true;
    }
    std::string key = flag;
    std::replace(key.begin(), key.end(), '-', '_');
    if (typed.emplace(key, "--" + flag).second) flags_in_order.push_back(key);
    object[key] = has_value ? megatron_value(value) : nlohmann::json(true);
  }
  // Spellings older Megatron-LM releases used (e.g. the SC'21 scripts).
  if (object.contains("checkpoint_activations")) {
    object.erase("checkpoint_activations");
    object["recompute_granularity"] = "full";
    if (!object.contains("recompute_method")) {
      object["recompute_method"] = object.value("activations_checkpoint_method", "uniform");
    }
    if (!object.contains("recompute_num_layers")) object["recompute_num_layers"] = 1;
  }
  object.erase("activations_checkpoint_method");
  JsonObjectReader r(diag, file, "", object);
  TrainPlan plan = read_plan(r, file);
  // An unknown flag a few edits from a known one is a typo that would silently change the plan
  // (--tensor-model-paralel-size 2 running at TP 1): an error. The rest are Megatron-LM flags
  // that do not change performance (--lr, --save, ...): listed once, as a warning.
  auto unknown = r.unknown_keys();
  std::vector<std::string> unused;
  for (const auto& key : flags_in_order) {
    if (std::find(unknown.begin(), unknown.end(), key) == unknown.end()) continue;
    if (auto near = r.likely_typo_of(key)) {
      std::string flag = "--" + *near;
      std::replace(flag.begin(), flag.end(), '_', '-');
      diag.error(file, "", fmt::format("unknown flag {}", typed[key]), fmt::format("did you mean {}?", flag));
    } else {
      unused.push_back(typed[key]);
    }
  }
  if (!unused.empty()) {
    diag.warn(file, "",
              fmt::format("{} flag(s) do not affect performance modelling and were ignored: {}",
                          unused.size(), fmt::join(unused, " ")));
  }
  diag.throw_if_errors();
  return plan;
}

}  // namespace clustersim
