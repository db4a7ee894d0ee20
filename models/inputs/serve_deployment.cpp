#include "models/inputs/serve_deployment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

std::string_view to_string(PoolRole role) {
  switch (role) {
    case PoolRole::kColocated: return "colocated";
    case PoolRole::kPrefill: return "prefill";
    case PoolRole::kDecode: return "decode";
    case PoolRole::kAttention: return "attention";
    case PoolRole::kExpert: return "expert";
    case PoolRole::kDraft: return "draft";
    case PoolRole::kTarget: return "target";
  }
  return "?";
}

std::string_view to_string(ServeScheduler scheduler) {
  return scheduler == ServeScheduler::kVllm ? "vllm" : "sarathi";
}

std::string_view to_string(ServeEngine engine) {
  switch (engine) {
    case ServeEngine::kVllm: return "vllm";
    case ServeEngine::kDistServe: return "distserve";
    case ServeEngine::kTrtllm: return "trtllm";
  }
  return "?";
}

std::string_view to_string(RouterPolicy policy) {
  switch (policy) {
    case RouterPolicy::kRoundRobin: return "round_robin";
    case RouterPolicy::kLeastOutstanding: return "least_outstanding";
    case RouterPolicy::kKvAware: return "kv_aware";
  }
  return "?";
}

std::int64_t ServeDeployment::total_gpus() const {
  std::int64_t n = 0;
  for (const auto& p : pools) n += p.gpus;
  return n;
}

std::int64_t ServeDeployment::gpu_extent(std::int64_t gpus_per_node) const {
  std::int64_t end = 0;
  for (const auto& p : pools) end = std::max(end, p.first_gpu + p.gpus);
  if (background_training) {
    end = std::max(end, (background_training->first_node + background_training->nodes) * gpus_per_node);
  }
  return end;
}

const PoolSpec* ServeDeployment::pool(std::string_view name) const {
  for (const auto& p : pools) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

namespace {

constexpr std::int64_t kMaxCount = std::int64_t{1} << 24;

PoolRole role_from(const std::string& s) {
  static const std::map<std::string, PoolRole, std::less<>> kRoles{
      {"colocated", PoolRole::kColocated}, {"prefill", PoolRole::kPrefill},
      {"decode", PoolRole::kDecode},       {"attention", PoolRole::kAttention},
      {"expert", PoolRole::kExpert},       {"draft", PoolRole::kDraft},
      {"target", PoolRole::kTarget}};
  return kRoles.at(s);
}

PoolSpec read_pool(JsonObjectReader& r) {
  PoolSpec p;
  p.pointer = r.pointer();
  p.name = r.required_string("name").value_or("");
  p.role = role_from(r.required_choice("role", {"colocated", "prefill", "decode", "attention", "expert",
                                                "draft", "target"},
                                       "what the pool's instances do")
                         .value_or("colocated"));
  p.gpus = r.required_integer("gpus", 1, kMaxCount).value_or(1);
  p.tp = r.integer("tensor_parallel_size", 1, 1024).value_or(1);
  p.pp = r.integer("pipeline_parallel_size", 1, 1024).value_or(1);
  p.ep = r.integer("expert_parallel_size", 1, 1 << 16).value_or(1);
  p.max_batch_tokens = r.integer("max_num_batched_tokens", 1, kMaxCount).value_or(p.max_batch_tokens);
  p.max_sequences = r.integer("max_num_seqs", 1, kMaxCount).value_or(p.max_sequences);
  p.scheduler = r.choice("scheduler", {"vllm", "sarathi"}).value_or("vllm") == "sarathi"
                    ? ServeScheduler::kSarathi
                    : ServeScheduler::kVllm;
  auto budget = r.integer("token_budget", 1, kMaxCount);
  if (budget) p.token_budget = *budget;
  p.kv_block_tokens = r.integer("block_size", 1, 1 << 16).value_or(p.kv_block_tokens);
  p.watermark = r.number("watermark", 0.0, 0.5).value_or(p.watermark);
  p.memory_fraction = r.number("gpu_memory_utilization", 0.01, 1.0).value_or(p.memory_fraction);
  p.first_node = r.integer("first_node", 0, kMaxCount).value_or(-1);
  if (const nlohmann::json* sizes = r.raw("cuda_graph_batch_sizes"); sizes && !sizes->is_null()) {
    bool ok = sizes->is_array() && !sizes->empty();
    for (std::size_t i = 0; ok && i < sizes->size(); ++i) {
      const nlohmann::json& v = (*sizes)[i];
      ok = v.is_number_integer() && v.get<std::int64_t>() >= 1 &&
           (i == 0 || v.get<std::int64_t>() > (*sizes)[i - 1].get<std::int64_t>());
      if (ok) p.cuda_graph_batch_sizes.push_back(v.get<std::int64_t>());
    }
    if (!ok) {
      p.cuda_graph_batch_sizes.clear();
      r.error("cuda_graph_batch_sizes", fmt::format("expected ascending positive integers, got {}", describe_json_value(*sizes)),
              "e.g. [1, 2, 4, 8, 16, 32, 64, 128, 256]");
    }
  }
  p.model = r.string("model").value_or("");

  const auto gpi = p.tp * p.pp;
  if (p.role != PoolRole::kExpert && p.gpus % gpi != 0) {
    r.error("gpus", fmt::format("{} GPUs do not split into instances of TP*PP = {}*{} = {}", p.gpus, p.tp,
                                p.pp, gpi),
            "gpus must be a multiple of tensor_parallel_size * pipeline_parallel_size");
  }
  if (p.role != PoolRole::kExpert && p.tp % p.ep != 0) {
    r.error("expert_parallel_size", fmt::format("{} does not divide tensor_parallel_size={}", p.ep, p.tp),
            "experts are spread over the ranks of a tensor-parallel group");
  }
  if (p.role == PoolRole::kExpert && p.gpus % p.ep != 0) {
    r.error("expert_parallel_size", fmt::format("{} does not divide gpus={}", p.ep, p.gpus));
  }
  if (p.scheduler == ServeScheduler::kSarathi && !budget) {
    r.error("token_budget", "required key is missing", "sarathi chunks prefills to this many tokens per iteration");
  }
  if (p.scheduler == ServeScheduler::kVllm && budget) {
    r.error("token_budget", "only the sarathi scheduler has a token budget", "set \"scheduler\": \"sarathi\"");
  }
  if (!p.model.empty() && p.role != PoolRole::kDraft) {
    r.error("model", "only draft pools name their own model", "the other pools serve --model");
  }
  if (p.role == PoolRole::kDraft && p.model.empty()) {
    r.error("model", "required key is missing", "the draft model: a preset name or a config.json");
  }
  if (r.has("speculative")) {
    auto s = r.object("speculative", true);
    SpeculativeSpec spec;
    spec.draft_pool = s.required_string("draft_pool").value_or("");
    spec.draft_tokens = s.integer("draft_tokens", 1, 64).value_or(spec.draft_tokens);
    spec.acceptance_rate = s.required_number("acceptance_rate", 0.0, 0.999, "chance that a drafted token is accepted")
                               .value_or(spec.acceptance_rate);
    s.reject_unknown_keys();
    if (p.role != PoolRole::kTarget) r.error("speculative", "only target pools decode speculatively", "set \"role\": \"target\"");
    p.speculative = spec;
  }
  if (r.has("afd")) {
    auto a = r.object("afd", true);
    AfdSpec afd;
    afd.expert_pool = a.required_string("expert_pool").value_or("");
    afd.micro_batches = a.integer("micro_batches", 1, 64).value_or(0);
    a.reject_unknown_keys();
    if (p.role != PoolRole::kAttention) r.error("afd", "only attention pools have an afd section");
    p.afd = afd;
  }
  r.reject_unknown_keys();
  return p;
}

}  // namespace

ServeDeployment load_serve_deployment(const std::string& source, std::int64_t gpus_per_node,
                                      Diagnostics& diag) {
  JsonDocument doc = read_json_document(source, "--deployment");
  ServeDeployment d;
  d.source = doc.file;
  JsonObjectReader root(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  root.allow({"description"});
  const std::string router = root.choice("router", {"round_robin", "least_outstanding", "kv_aware"})
                                 .value_or("least_outstanding");
  d.router = router == "round_robin"        ? RouterPolicy::kRoundRobin
             : router == "kv_aware"          ? RouterPolicy::kKvAware
                                             : RouterPolicy::kLeastOutstanding;
  if (auto dt = root.choice("dtype", {"bf16", "fp16", "fp8"})) d.dtype = *dtype_from_string(*dt);
  const std::string engine = root.choice("engine", {"vllm", "distserve", "trtllm"}).value_or("vllm");
  if (engine == "distserve") d.engine = ServeEngine::kDistServe;
  if (engine == "trtllm") d.engine = ServeEngine::kTrtllm;
  d.iteration_overhead_s = root.number("iteration_overhead_s", 0.0, 10.0).value_or(0.0);
  d.iteration_overhead_per_sequence_s = root.number("iteration_overhead_per_sequence_s", 0.0, 1.0).value_or(0.0);
  if (const nlohmann::json* raw = root.raw("sources"); raw) {
    const std::string where = root.pointer_of("sources");
    if (!raw->is_object()) {
      diag.error(doc.file, where, fmt::format("expected an object, got {}", describe_json_value(*raw)));
    } else {
      for (const auto& [key, text] : raw->items()) {
        const std::string at = json_pointer_append(where, key);
        const nlohmann::json* field = root.raw(key);
        if (!text.is_string()) {
          diag.error(doc.file, at, fmt::format("expected a string, got {}", describe_json_value(text)),
                     "where the number comes from: document, table, URL");
        } else if (!field || !field->is_number()) {
          diag.error(doc.file, at, fmt::format("\"{}\" is not a number of this deployment", key),
                     "keys of sources name top-level numbers, such as \"iteration_overhead_s\"");
        } else {
          d.sources[key] = text.get<std::string>();
        }
      }
    }
  }
  d.prefix_block_tokens = root.integer("prefix_block_tokens", 1, 1 << 20).value_or(d.prefix_block_tokens);
  if (root.choice("kv_transfer", {"whole", "layerwise"}).value_or("whole") == "layerwise") {
    d.kv_transfer = KvTransferMode::kLayerwise;
  }
  if (root.has("background_training")) {
    auto b = root.object("background_training", true);
    BackgroundTrainingSpec spec;
    spec.first_node = b.required_integer("first_node", 0, kMaxCount).value_or(0);
    spec.nodes = b.required_integer("nodes", 2, kMaxCount).value_or(2);
    spec.all_reduce_bytes =
        b.required_number("all_reduce_bytes", 1.0, 1e15, "gradient bytes each GPU all-reduces per step").value_or(1);
    spec.period_s = b.required_number("period_s", 1e-6, 1e6, "seconds from one all-reduce to the next").value_or(1);
    spec.start_s = b.number("start_s", 0.0, 1e9).value_or(0.0);
    b.reject_unknown_keys();
    d.background_training = spec;
  }

  const nlohmann::json* pools = root.raw("pools");
  const std::string pools_ptr = root.pointer_of("pools");
  if (!pools) {
    diag.error(doc.file, pools_ptr, "required key is missing", "a list of instance pools");
  } else if (!pools->is_array() || pools->empty()) {
    diag.error(doc.file, pools_ptr, fmt::format("expected a non-empty array, got {}", describe_json_value(*pools)));
  } else {
    for (std::size_t i = 0; i < pools->size(); ++i) {
      JsonObjectReader pr(diag, doc.file, json_pointer_append(pools_ptr, i), (*pools)[i]);
      if (!pr.is_object()) continue;
      d.pools.push_back(read_pool(pr));
    }
  }
  root.reject_unknown_keys();
  diag.throw_if_errors();

  // Cross-pool rules.
  auto err = [&](const PoolSpec& p, std::string_view key, std::string msg, std::string hint = {}) {
    diag.error(doc.file, key.empty() ? p.pointer : json_pointer_append(p.pointer, key), std::move(msg),
               std::move(hint));
  };
  std::map<std::string, int> count;
  for (const auto& p : d.pools) {
    if (++count[p.name] == 2) err(p, "name", fmt::format("pool name \"{}\" is used twice", p.name));
  }
  auto has_role = [&](PoolRole role) {
    for (const auto& p : d.pools) {
      if (p.role == role) return true;
    }
    return false;
  };
  const bool prefill = has_role(PoolRole::kPrefill);
  const bool decode_side = has_role(PoolRole::kDecode) || has_role(PoolRole::kAttention);
  if (d.kv_transfer == KvTransferMode::kLayerwise && (!prefill || d.engine == ServeEngine::kDistServe)) {
    diag.error(doc.file, "/kv_transfer",
               !prefill ? "layer-wise KV transfer needs a prefill pool handing off to a decode pool"
                        : "DistServe's engine migrates whole KV caches between decode iterations",
               "\"kv_transfer\": \"whole\"");
  }
  for (const auto& p : d.pools) {
    if (p.role == PoolRole::kPrefill && !decode_side) {
      err(p, "role", "a prefill pool needs a decode (or attention) pool to hand its requests to");
    }
    if ((p.role == PoolRole::kDecode || p.role == PoolRole::kAttention) && !prefill) {
      err(p, "role", fmt::format("a {} pool needs a prefill pool in front of it", to_string(p.role)),
          "or use \"role\": \"colocated\"");
    }
    if (d.engine != ServeEngine::kTrtllm && !p.cuda_graph_batch_sizes.empty()) {
      err(p, "cuda_graph_batch_sizes", "CUDA-graph padding is modelled for the trtllm engine only", "\"engine\": \"trtllm\"");
    }
    if (d.engine == ServeEngine::kTrtllm &&
        (p.role != PoolRole::kColocated || p.speculative || p.scheduler != ServeScheduler::kVllm)) {
      err(p, p.role != PoolRole::kColocated ? "role" : p.speculative ? "speculative" : "scheduler",
          "the trtllm engine runs colocated pools with its own in-flight batching only",
          "\"role\": \"colocated\", no speculative or scheduler key");
    }
    if (p.role == PoolRole::kColocated && (prefill || decode_side)) {
      err(p, "role", "colocated pools cannot be mixed with prefill/decode pools");
    }
    if (p.speculative) {
      const PoolSpec* dp = d.pool(p.speculative->draft_pool);
      if (!dp || dp->role != PoolRole::kDraft) {
        err(p, "speculative/draft_pool", fmt::format("no draft pool named \"{}\"", p.speculative->draft_pool));
      } else if (dp->instances() != p.instances()) {
        err(p, "speculative/draft_pool",
            fmt::format("the draft pool has {} instances, the target pool {}", dp->instances(), p.instances()),
            "each target instance pairs with one draft instance");
      }
    }
    if (p.role == PoolRole::kTarget && !p.speculative) {
      err(p, "speculative", "required key is missing", "target pools name their draft pool");
    }
    if (p.afd) {
      const PoolSpec* e = d.pool(p.afd->expert_pool);
      if (!e || e->role != PoolRole::kExpert) {
        err(p, "afd/expert_pool", fmt::format("no expert pool named \"{}\"", p.afd->expert_pool));
      }
    }
    if (p.role == PoolRole::kAttention && !p.afd) {
      err(p, "afd", "required key is missing", "attention pools name their expert pool");
    }
  }
  // Placement: consecutive nodes; explicit first_node must not overlap another pool.
  std::int64_t next = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;  // [first GPU, end GPU)
  for (auto& p : d.pools) {
    std::int64_t first = p.first_node >= 0 ? p.first_node * gpus_per_node : next;
    if (p.first_node < 0) p.first_node = first / gpus_per_node;
    p.first_gpu = first;
    for (std::size_t i = 0; i < spans.size(); ++i) {
      if (first < spans[i].second && spans[i].first < first + p.gpus) {
        err(p, "first_node",
            fmt::format("GPUs {}..{} overlap pool \"{}\"", first, first + p.gpus - 1, d.pools[i].name));
        break;
      }
    }
    spans.emplace_back(first, first + p.gpus);
    next = std::max(next, first + p.gpus);  // packed: the next pool starts on the next GPU
  }
  if (const auto& b = d.background_training) {
    const std::int64_t first = b->first_node * gpus_per_node, end = (b->first_node + b->nodes) * gpus_per_node;
    for (std::size_t i = 0; i < spans.size(); ++i) {
      if (first < spans[i].second && spans[i].first < end) {
        diag.error(doc.file, "/background_training/first_node",
                   fmt::format("the training job's GPUs {}..{} overlap pool \"{}\"", first, end - 1, d.pools[i].name),
                   "serving and training share the fabric, not GPUs: start it on a node after the pools");
        break;
      }
    }
  }
  diag.throw_if_errors();
  return d;
}

}  // namespace clustersim
