#include "models/inputs/model_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string_view>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

std::int64_t ModelSpec::num_moe_layers() const {
  return std::count(moe_layers.begin(), moe_layers.end(), true);
}

namespace {

// Every spelling of a field that Hugging Face configs use, across model families and
// transformers v4/v5. The first spelling is the canonical one.
struct Alias {
  std::string_view canonical;
  std::initializer_list<std::string_view> spellings;
};

constexpr std::string_view kKnownModelTypes[] = {
    "gpt2",  "llama",     "mistral", "mixtral",     "nemotron",    "qwen2",      "qwen2_moe",
    "qwen3", "qwen3_moe", "deepseek_v2", "deepseek_v3", "gpt_oss"};

const Alias kAliases[] = {
    {"hidden_size", {"hidden_size", "n_embd", "d_model"}},
    {"num_hidden_layers", {"num_hidden_layers", "n_layer", "num_layers"}},
    {"num_attention_heads", {"num_attention_heads", "n_head", "num_heads"}},
    {"num_key_value_heads", {"num_key_value_heads", "num_kv_heads", "n_kv_heads"}},
    {"intermediate_size", {"intermediate_size", "n_inner", "ffn_hidden_size"}},
    {"max_position_embeddings", {"max_position_embeddings", "n_positions", "n_ctx"}},
    {"num_experts", {"num_local_experts", "num_experts", "n_routed_experts"}},
    {"num_experts_per_tok", {"num_experts_per_tok", "moe_topk"}},
    {"n_shared_experts", {"n_shared_experts", "num_shared_experts"}},
    {"torch_dtype", {"torch_dtype", "dtype"}},
    {"attention_dropout", {"attention_dropout", "attn_pdrop"}},
    {"hidden_dropout", {"hidden_dropout", "resid_pdrop"}},
};

const Alias& alias(std::string_view canonical) {
  for (const auto& a : kAliases) {
    if (a.canonical == canonical) return a;
  }
  throw std::logic_error(fmt::format("no alias entry for {}", canonical));
}

// Which spelling of `canonical` the config uses. Reports a conflict when two spellings are
// present with different values; returns nullopt when none is present.
std::optional<std::string> spelling_in(JsonObjectReader& r, std::string_view canonical) {
  std::optional<std::string> found;
  const nlohmann::json* found_value = nullptr;
  for (auto spelling : alias(canonical).spellings) {
    const nlohmann::json* v = r.raw(spelling);
    if (!v) continue;
    if (found_value && *found_value != *v) {
      r.error(spelling, fmt::format("conflicts with \"{}\": {} vs {}", *found, v->dump(),
                                    found_value->dump()),
              "these keys are spellings of the same field; keep one");
      continue;
    }
    if (!found) {
      found = std::string(spelling);
      found_value = v;
    }
  }
  return found;
}

// Upper bounds far beyond any real model, so that sizes multiply without overflow.
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 24;   // hidden, MLP, vocab dimensions
constexpr std::int64_t kMaxCount = std::int64_t{1} << 16;   // layers, heads, experts

std::optional<std::int64_t> aliased_integer(JsonObjectReader& r, std::string_view canonical,
                                            std::int64_t min, bool required,
                                            std::int64_t max = kMaxWidth) {
  auto spelling = spelling_in(r, canonical);
  if (!spelling) {
    if (required) {
      r.error(canonical, "required key is missing",
              fmt::format("any of: {}", fmt::join(alias(canonical).spellings, ", ")));
    }
    return std::nullopt;
  }
  return r.integer(*spelling, min, max);
}

std::optional<double> aliased_probability(JsonObjectReader& r, std::string_view canonical) {
  auto spelling = spelling_in(r, canonical);
  if (!spelling) return std::nullopt;
  return r.number(*spelling, 0.0, 1.0);
}

bool is_known_model_type(std::string_view type) {
  return std::find(std::begin(kKnownModelTypes), std::end(kKnownModelTypes), type) !=
         std::end(kKnownModelTypes);
}

void read_attention(JsonObjectReader& r, ModelSpec& m) {
  m.num_attention_heads = aliased_integer(r, "num_attention_heads", 1, true, kMaxCount).value_or(0);
  m.num_key_value_heads =
      aliased_integer(r, "num_key_value_heads", 1, false, kMaxCount).value_or(m.num_attention_heads);
  if (m.num_attention_heads > 0 && m.num_key_value_heads > 0 &&
      m.num_attention_heads % m.num_key_value_heads != 0) {
    r.error(*spelling_in(r, "num_key_value_heads"),
            fmt::format("{} does not divide num_attention_heads={}", m.num_key_value_heads,
                        m.num_attention_heads),
            "grouped-query attention needs heads to be a multiple of key/value heads");
  }
  if (r.has("kv_lora_rank")) {
    m.attention = AttentionKind::kMultiLatent;
    m.kv_lora_rank = r.required_integer("kv_lora_rank", 1, kMaxWidth).value_or(0);
    m.q_lora_rank = r.integer("q_lora_rank", 0, kMaxWidth).value_or(0);
    m.qk_nope_head_dim = r.required_integer("qk_nope_head_dim", 1, kMaxWidth).value_or(0);
    m.qk_rope_head_dim = r.required_integer("qk_rope_head_dim", 0, kMaxWidth).value_or(0);
    m.v_head_dim = r.required_integer("v_head_dim", 1, kMaxWidth).value_or(0);
    m.head_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
    // MLA caches one latent per token shared by all heads; model it as such.
    m.num_key_value_heads = m.num_attention_heads;
    return;
  }
  auto head_dim = r.integer("head_dim", 1, kMaxWidth);
  if (head_dim) {
    m.head_dim = *head_dim;
  } else if (m.num_attention_heads > 0 && m.hidden_size > 0) {
    if (m.hidden_size % m.num_attention_heads != 0) {
      r.error(*spelling_in(r, "num_attention_heads"),
              fmt::format("{} does not divide hidden_size={}", m.num_attention_heads,
                          m.hidden_size),
              "give head_dim explicitly, or a head count that divides hidden_size");
    } else {
      m.head_dim = m.hidden_size / m.num_attention_heads;
    }
  }
  m.v_head_dim = m.head_dim;
}

void read_moe(JsonObjectReader& r, ModelSpec& m) {
  m.num_experts = aliased_integer(r, "num_experts", 0, false, kMaxCount).value_or(0);
  m.moe_layers.assign(static_cast<std::size_t>(std::max<std::int64_t>(m.num_layers, 0)), false);
  if (m.num_experts == 0) return;
  auto topk_spelling = spelling_in(r, "num_experts_per_tok");
  if (!topk_spelling) {
    r.error("num_experts_per_tok", "required key is missing for a mixture-of-experts model",
            "the number of experts each token is routed to");
  } else {
    m.num_experts_per_tok = r.integer(*topk_spelling, 1, m.num_experts).value_or(0);
  }
  m.moe_intermediate_size =
      r.integer("moe_intermediate_size", 1, kMaxWidth).value_or(m.intermediate_size);
  if (auto shared = aliased_integer(r, "n_shared_experts", 0, false, kMaxCount)) {
    m.shared_expert_intermediate_size = *shared * m.moe_intermediate_size;
  }
  if (auto shared = r.integer("shared_expert_intermediate_size", 0, kMaxWidth)) {
    m.shared_expert_intermediate_size = *shared;
    m.shared_expert_gate = *shared > 0;  // qwen2_moe gates its shared expert
  }
  if (auto method = r.string("topk_method")) m.router_bias = *method == "noaux_tc";

  auto first_dense = r.integer("first_k_dense_replace", 0, m.num_layers).value_or(0);
  auto frequency = r.integer("moe_layer_freq", 1, kMaxCount).value_or(1);
  auto sparse_step = r.integer("decoder_sparse_step", 1, kMaxCount).value_or(1);
  std::vector<bool> mlp_only(m.moe_layers.size(), false);
  if (const nlohmann::json* list = r.raw("mlp_only_layers")) {
    if (!list->is_array()) {
      r.error("mlp_only_layers", fmt::format("expected an array of layer indices, got {}",
                                             describe_json_value(*list)));
    } else {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const auto& v = (*list)[i];
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
            v.get<std::int64_t>() >= m.num_layers) {
          r.diagnostics().error(r.file(), json_pointer_append(r.pointer_of("mlp_only_layers"), i),
                                fmt::format("{} is not a layer index", v.dump()),
                                fmt::format("an integer in [0, {}]", m.num_layers - 1));
          continue;
        }
        mlp_only[static_cast<std::size_t>(v.get<std::int64_t>())] = true;
      }
    }
  }
  for (std::int64_t i = 0; i < m.num_layers; ++i) {
    bool moe = i >= first_dense && i % frequency == 0 && (i + 1) % sparse_step == 0 &&
               !mlp_only[static_cast<std::size_t>(i)];
    m.moe_layers[static_cast<std::size_t>(i)] = moe;
  }
}

}  // namespace

ModelSpec load_model_spec(const std::string& source, const std::string& display_name,
                          Diagnostics& diag) {
  JsonDocument doc = read_json_document(source, "--model");
  ModelSpec m;
  m.source = doc.file;
  m.name = display_name.empty() ? std::filesystem::path(doc.file).stem().string() : display_name;

  JsonObjectReader root(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  // Multimodal configs nest the language model under text_config.
  JsonObjectReader r = root.has("text_config") ? root.object("text_config", true) : root;

  m.model_type = r.string("model_type").value_or(root.string("model_type").value_or(""));
  if (!is_known_model_type(m.model_type)) {
    diag.warn(doc.file, r.pointer_of("model_type"),
              fmt::format("model_type \"{}\" is not one clustersim knows; reading it as a "
                          "llama-style decoder (gated MLP, RMSNorm, no biases)",
                          m.model_type),
              fmt::format("known: {}", fmt::join(kKnownModelTypes, ", ")));
  }
  const bool gpt2 = m.model_type == "gpt2";
  if (auto s = spelling_in(r, "torch_dtype")) m.dtype = r.string(*s).value_or("");

  m.hidden_size = aliased_integer(r, "hidden_size", 1, true).value_or(0);
  m.num_layers = aliased_integer(r, "num_hidden_layers", 1, true, kMaxCount).value_or(0);
  m.vocab_size = r.required_integer("vocab_size", 1, kMaxWidth).value_or(0);
  m.max_position_embeddings = aliased_integer(r, "max_position_embeddings", 1, false, std::int64_t{1} << 32).value_or(0);
  m.intermediate_size = aliased_integer(r, "intermediate_size", 1, false)
                            .value_or(gpt2 ? 4 * m.hidden_size : 0);
  m.tie_word_embeddings = r.boolean("tie_word_embeddings").value_or(gpt2);
  m.learned_position_embeddings = gpt2;
  // Nemotron: squared-ReLU MLP without a gate, LayerNorm (zero-centred gamma), RoPE, no biases.
  const bool nemotron = m.model_type == "nemotron";
  m.norm = gpt2 || nemotron ? NormKind::kLayerNorm : NormKind::kRmsNorm;
  m.gated_mlp = !gpt2 && !nemotron;

  read_attention(r, m);
  bool attention_bias = r.boolean("attention_bias").value_or(false);
  bool qwen2 = m.model_type == "qwen2" || m.model_type == "qwen2_moe";
  m.qkv_bias = gpt2 || qwen2 || attention_bias;
  m.o_bias = gpt2 || attention_bias;
  m.mlp_bias = gpt2 || r.boolean("mlp_bias").value_or(false);
  m.qk_norm = m.model_type == "qwen3" || m.model_type == "qwen3_moe";
  if (r.boolean("use_sliding_window").value_or(true)) {
    m.sliding_window = r.integer("sliding_window", 1, std::int64_t{1} << 32).value_or(0);
  }
  // GPT-OSS windows only every other layer (layer_types); one window for all layers would
  // undercount its attention, so its layers are read as full causal attention.
  if (m.model_type == "gpt_oss") m.sliding_window = 0;

  read_moe(r, m);
  if (m.num_moe_layers() < m.num_layers && m.intermediate_size == 0) {
    r.error("intermediate_size", "required key is missing", "the MLP hidden size of dense layers");
  }
  m.num_mtp_layers = r.integer("num_nextn_predict_layers", 0, kMaxCount).value_or(0);

  // transformers' GPT2Config defaults dropout to 0.1 when the file leaves it out.
  m.attention_dropout = aliased_probability(r, "attention_dropout").value_or(gpt2 ? 0.1 : 0.0);
  m.hidden_dropout = aliased_probability(r, "hidden_dropout").value_or(gpt2 ? 0.1 : 0.0);

  // Unknown keys are fine in a config.json (tokenizer ids, rope settings, ...), but one a typo
  // away from a key read above would silently fall back to a default (num_key_value_head: 32
  // KV heads instead of 8).
  // Keys read only for some families count as known too, so that their typos are caught in
  // any config and a family's own keys are never taken for typos of another's.
  r.allow({"kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "head_dim",
           "num_experts_per_tok", "moe_topk", "moe_intermediate_size", "n_shared_experts", "num_shared_experts",
           "shared_expert_intermediate_size", "topk_method", "first_k_dense_replace", "moe_layer_freq",
           "decoder_sparse_step", "mlp_only_layers", "sliding_window"});
  r.reject_likely_typos();

  // Counts are exact 64-bit integers; refuse sizes that could overflow them.
  const double h = static_cast<double>(m.hidden_size);
  const double per_layer = 4.0 * h * h + 3.0 * h * static_cast<double>(m.intermediate_size) +
                           3.0 * h * static_cast<double>(m.moe_intermediate_size) *
                               static_cast<double>(m.num_experts + 1);
  const double rough_parameters = static_cast<double>(m.num_layers) * per_layer +
                                  2.0 * h * static_cast<double>(m.vocab_size);
  if (!diag.has_errors() && rough_parameters > 1e16) {
    diag.error(doc.file, r.pointer(), fmt::format("about {:.2g} parameters: too large to model", rough_parameters),
               "check hidden_size, num_hidden_layers and the expert sizes");
  }
  diag.throw_if_errors();
  return m;
}

}  // namespace clustersim
