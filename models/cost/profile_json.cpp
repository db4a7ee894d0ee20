#include "models/cost/profile_json.hpp"

#include <fmt/format.h>

#include <set>

#include "models/inputs/json_reader.hpp"
#include "models/cost/record_json.hpp"

namespace clustersim {

namespace {

constexpr double kMaxSeconds = 1e6;

nlohmann::json size_segments_json(const std::vector<AlphaBetaSegment>& segments) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : segments) {
    out.push_back({{"min_size_bytes", s.min_size_bytes}, {"latency_s", s.latency_s},
                   {"seconds_per_byte", s.seconds_per_byte}});
  }
  return out;
}

struct FitWriter {
  nlohmann::json& key;
  nlohmann::json& parameters;
  void operator()(const CollectiveFit& f) const {
    key = {{"op", to_string(f.kind)}, {"algorithm", f.algorithm}, {"ranks", f.ranks},
           {"nodes", f.nodes}};
    parameters = {{"segments", size_segments_json(f.segments)}};
  }
  void operator()(const GemmFit& f) const {
    key = {{"dtype", to_string(f.dtype)}};
    parameters = {{"launch_s", f.parameters.launch_s},
                  {"sm_flops_per_s", f.parameters.sm_flops_per_s},
                  {"wave_s", f.parameters.wave_s},
                  {"memory_bytes_per_s", f.parameters.memory_bytes_per_s},
                  {"sm_count", f.parameters.sm_count}};
    // CPU fits only (GPU fits keep their keys): the device's one tile and the packing term.
    if (const auto& t = f.parameters.tile) {
      parameters["tile_m"] = t->m;
      parameters["tile_n"] = t->n;
    }
    if (f.parameters.packing_bytes_per_s > 0) parameters["packing_bytes_per_s"] = f.parameters.packing_bytes_per_s;
  }
  void operator()(const GroupedGemmFit& f) const {
    key = {{"dtype", to_string(f.dtype)}};
    parameters = {{"per_expert_s", f.per_expert_s}, {"flops_per_s", f.flops_per_s}};
  }
  void operator()(const AttentionFit& f) const {
    key = {{"pass", to_string(f.pass)}, {"causal", f.causal}, {"head_dim", f.head_dim}};
    parameters = {{"inverse_peak_s_per_flop", f.efficiency.inverse_peak_s_per_flop},
                  {"half_saturation_s_per_flop_token", f.efficiency.half_saturation_s_per_flop_token}};
  }
  void operator()(const DecodeAttentionFit& f) const {
    key = nlohmann::json::object();
    parameters = {{"launch_s", f.launch_s}, {"seconds_per_byte", f.seconds_per_byte}};
  }
  void operator()(const AllToAllFit& f) const {
    key = {{"phase", to_string(f.phase)}, {"implementation", f.implementation},
           {"gpus_per_node", f.gpus_per_node}};
    parameters = {{"latency_s", f.coefficients.at(0)},
                  {"seconds_per_byte_nvlink", f.coefficients.at(1)},
                  {"seconds_per_byte_network", f.coefficients.at(2)},
                  {"seconds_per_byte_network_per_remote_share", f.coefficients.at(3)}};
  }
  void operator()(const OverlapFit& f) const {
    key = {{"pattern", to_string(f.pattern)}, {"variant", f.variant}};
    parameters = {{"longer_scale", f.coefficients.at(0)},
                  {"shorter_exposed", f.coefficients.at(1)}};
  }
  void operator()(const MemoryFit& f) const {
    key = nlohmann::json::object();
    if (f.segments.size() == 1 && f.segments[0].min_size_bytes == 0) {
      parameters = {{"launch_s", f.segments[0].latency_s}, {"seconds_per_byte", f.segments[0].seconds_per_byte}};
    } else {
      parameters = {{"segments", size_segments_json(f.segments)}};
    }
  }
  void operator()(const ServeIterationFit& f) const {
    key = {{"model", f.model}, {"tensor_parallel_size", f.tensor_parallel_size}, {"phase", to_string(f.phase)},
           {"dtype", to_string(f.dtype)}};
    nlohmann::json segments = nlohmann::json::array();
    for (const auto& s : f.segments) {
      segments.push_back({{"min_batch", s.min_batch},
                          {"intercept_s", s.intercept_s},
                          {"per_token_s", s.per_token_s},
                          {"per_token_squared_s", s.per_token_squared_s},
                          {"per_sequence_s", s.per_sequence_s}});
    }
    parameters = {{"segments", segments}};
  }
};

constexpr std::string_view kModels[] = {"alpha_beta_piecewise",   "gemm_wave_roofline",
                                        "attention_saturating",   "decode_attention_linear",
                                        "all_to_all_linear",      "overlap_linear",
                                        "memory_linear",          "serve_iteration_linear",
                                        "grouped_gemm_linear"};

std::string model_names() {
  std::string out;
  for (auto m : kModels) out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", m);
  return out;
}

double seconds(JsonObjectReader& r, std::string_view key) {
  return r.required_number(key, 0.0, kMaxSeconds, "seconds, >= 0").value_or(0);
}

// Calls read(s) for every object of p's non-empty array "segments", then rejects its unknown keys.
template <class Read>
void read_segment_array(JsonObjectReader& p, const char* hint, const Read& read) {
  const nlohmann::json* raw = p.raw("segments");
  if (!raw || !raw->is_array() || raw->empty()) {
    p.error("segments", raw ? "expected a non-empty array" : "is required", hint);
    return;
  }
  for (std::size_t i = 0; i < raw->size(); ++i) {
    JsonObjectReader s(p.diagnostics(), p.file(), json_pointer_append(p.pointer_of("segments"), i), (*raw)[i]);
    read(s);
    s.reject_unknown_keys();
  }
}

std::vector<AlphaBetaSegment> read_segments(JsonObjectReader& p) {
  std::vector<AlphaBetaSegment> segments;
  read_segment_array(p, "[{\"min_size_bytes\", \"latency_s\", \"seconds_per_byte\"}, ...]", [&](JsonObjectReader& s) {
    AlphaBetaSegment seg;
    seg.min_size_bytes = s.required_number("min_size_bytes", 0, 1e18, "bytes, >= 0").value_or(0);
    seg.latency_s = seconds(s, "latency_s");
    seg.seconds_per_byte = seconds(s, "seconds_per_byte");
    if (!segments.empty() && seg.min_size_bytes <= segments.back().min_size_bytes) {
      s.error("min_size_bytes", "segments must be sorted by increasing min_size_bytes");
    }
    segments.push_back(seg);
  });
  return segments;
}

ServeIterationFit read_serve_iteration(JsonObjectReader& key, JsonObjectReader& p) {
  ServeIterationFit f;
  f.model = key.required_string("model").value_or("");
  f.tensor_parallel_size = key.required_integer("tensor_parallel_size", 1, 1 << 20).value_or(1);
  auto phase = key.required_choice("phase", {"prefill", "decode"}, "\"prefill\" or \"decode\"");
  f.phase = phase && *phase == "decode" ? ServePhase::kDecode : ServePhase::kPrefill;
  if (auto d = key.string("dtype")) {
    if (auto parsed = dtype_from_string(*d)) {
      f.dtype = *parsed;
    } else {
      key.error("dtype", fmt::format("unknown dtype \"{}\"", *d), "fp64, fp32, tf32, bf16, fp16 or fp8");
    }
  } else {
    key.error("dtype", "is required", "the dtype the iterations ran in");
  }
  read_segment_array(p, "[{\"min_batch\", \"intercept_s\", \"per_token_s\", \"per_token_squared_s\", \"per_sequence_s\"}, ...]",
                     [&](JsonObjectReader& s) {
                       ServeIterationSegment seg;
                       seg.min_batch = s.required_integer("min_batch", 1, 1 << 30).value_or(1);
                       seg.intercept_s = seconds(s, "intercept_s");
                       seg.per_token_s = seconds(s, "per_token_s");
                       seg.per_token_squared_s = seconds(s, "per_token_squared_s");
                       seg.per_sequence_s = seconds(s, "per_sequence_s");
                       if (f.segments.empty() && seg.min_batch != 1) {
                         s.error("min_batch", "the first segment must start at batch 1");
                       }
                       if (!f.segments.empty() && seg.min_batch <= f.segments.back().min_batch) {
                         s.error("min_batch", "segments must be sorted by increasing min_batch");
                       }
                       f.segments.push_back(seg);
                     });
  return f;
}

// The required "dtype" of a GEMM or grouped-GEMM fit's key; `dtype` is left as is when it is bad.
void read_gemm_dtype(JsonObjectReader& key, Dtype& dtype) {
  auto d = key.required_string("dtype");
  if (!d) return;
  if (auto dt = dtype_from_string(*d)) {
    dtype = *dt;
  } else {
    key.error("dtype", fmt::format("unknown dtype \"{}\"", *d), "bf16, fp16, fp8, tf32, fp32, fp64");
  }
}

FitModel read_model(const std::string& name, JsonObjectReader& key, JsonObjectReader& p) {
  if (name == "alpha_beta_piecewise") {
    CollectiveFit f;
    auto op = key.required_string("op");
    if (op) {
      if (auto kind = collective_kind_from_string(*op)) {
        f.kind = *kind;
      } else {
        key.error("op", fmt::format("unknown collective \"{}\"", *op),
                  "all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, reduce, send_recv");
      }
    }
    f.algorithm = key.string("algorithm").value_or("any");
    f.ranks = static_cast<int>(key.required_integer("ranks", 1, 1 << 24).value_or(1));
    f.nodes = static_cast<int>(key.integer("nodes", 1, 1 << 24).value_or(1));
    f.segments = read_segments(p);
    return f;
  }
  if (name == "gemm_wave_roofline") {
    GemmFit f;
    read_gemm_dtype(key, f.dtype);
    f.parameters.launch_s = seconds(p, "launch_s");
    f.parameters.sm_flops_per_s = p.required_positive_number("sm_flops_per_s").value_or(1);
    f.parameters.wave_s = seconds(p, "wave_s");
    f.parameters.memory_bytes_per_s = p.required_positive_number("memory_bytes_per_s").value_or(1);
    f.parameters.sm_count = p.required_integer("sm_count", 1, 100000).value_or(1);
    auto tile_m = p.integer("tile_m", 1, 1 << 16), tile_n = p.integer("tile_n", 1, 1 << 16);
    if (tile_m.has_value() != tile_n.has_value()) {
      p.error(tile_m ? "tile_n" : "tile_m", "is required with the other tile dimension",
              "both tile_m and tile_n (the device's one tile), or neither");
    } else if (tile_m) {
      f.parameters.tile = GemmTile{*tile_m, *tile_n, 1};
    }
    f.parameters.packing_bytes_per_s = p.positive_number("packing_bytes_per_s").value_or(0.0);
    return f;
  }
  if (name == "attention_saturating") {
    AttentionFit f;
    auto pass = key.required_choice("pass", {"forward", "backward", "forward_backward"},
                                    "\"forward\", \"backward\" or \"forward_backward\"");
    for (auto ps : {AttentionPass::kForward, AttentionPass::kBackward, AttentionPass::kForwardBackward}) {
      if (pass && *pass == to_string(ps)) f.pass = ps;
    }
    f.causal = key.boolean("causal").value_or(false);
    f.head_dim = key.required_integer("head_dim", 1, 1 << 20).value_or(1);
    f.efficiency.inverse_peak_s_per_flop =
        p.required_positive_number("inverse_peak_s_per_flop").value_or(1);
    f.efficiency.half_saturation_s_per_flop_token =
        p.required_number("half_saturation_s_per_flop_token", -1.0, 1.0, "s per FLOP x tokens")
            .value_or(0);
    return f;
  }
  if (name == "decode_attention_linear") {
    DecodeAttentionFit f;
    f.launch_s = seconds(p, "launch_s");
    f.seconds_per_byte = p.required_positive_number("seconds_per_byte").value_or(1);
    return f;
  }
  if (name == "serve_iteration_linear") return read_serve_iteration(key, p);
  if (name == "memory_linear") {
    // Either one line (launch_s, seconds_per_byte) or segments by size.
    MemoryFit f;
    if (p.has("segments")) {
      f.segments = read_segments(p);
    } else {
      f.segments = {{0.0, seconds(p, "launch_s"), p.required_positive_number("seconds_per_byte").value_or(1)}};
    }
    return f;
  }
  if (name == "grouped_gemm_linear") {
    GroupedGemmFit f;
    read_gemm_dtype(key, f.dtype);
    f.per_expert_s = seconds(p, "per_expert_s");
    f.flops_per_s = p.required_positive_number("flops_per_s").value_or(1);
    return f;
  }
  if (name == "all_to_all_linear") {
    AllToAllFit f;
    auto phase = key.required_choice("phase", {"dispatch", "combine"}, "\"dispatch\" or \"combine\"");
    f.phase = phase && *phase == "combine" ? MoePhase::kCombine : MoePhase::kDispatch;
    f.implementation = key.string("implementation").value_or("unknown");
    f.gpus_per_node = static_cast<int>(key.required_integer("gpus_per_node", 1, 1024).value_or(8));
    f.coefficients = {seconds(p, "latency_s"), seconds(p, "seconds_per_byte_nvlink"),
                      seconds(p, "seconds_per_byte_network"),
                      seconds(p, "seconds_per_byte_network_per_remote_share")};
    return f;
  }
  OverlapFit f;
  auto pattern = key.required_choice("pattern", {"ag_gemm", "gemm_rs"}, "\"ag_gemm\" or \"gemm_rs\"");
  f.pattern = pattern && *pattern == "gemm_rs" ? OverlapPattern::kGemmReduceScatter
                                               : OverlapPattern::kAllGatherGemm;
  f.variant = key.string("variant").value_or("unknown");
  f.coefficients = {p.required_number("longer_scale", 0.5, 10.0, "about 1; 1 = no slowdown").value_or(1),
                    p.required_number("shorter_exposed", -1.0, 2.0, "0 = hidden, 1 = exposed").value_or(0)};
  return f;
}

Fit read_fit(JsonObjectReader& r, std::size_t record_count) {
  Fit fit;
  fit.id = r.required_string("id").value_or("");
  auto name = r.required_choice("model", {"alpha_beta_piecewise", "gemm_wave_roofline",
                                          "attention_saturating", "decode_attention_linear",
                                          "all_to_all_linear", "overlap_linear", "memory_linear",
                                          "serve_iteration_linear", "grouped_gemm_linear"},
                                model_names());
  auto origin = r.required_choice("origin", {"fitted", "roofline_default"},
                                  "\"fitted\" or \"roofline_default\"");
  fit.origin = origin && *origin == "roofline_default" ? FitOrigin::kRooflineDefault
                                                       : FitOrigin::kFitted;
  JsonObjectReader key = r.object("key", true);
  JsonObjectReader parameters = r.object("parameters", true);
  if (name && key.is_object() && parameters.is_object()) {
    fit.model = read_model(*name, key, parameters);
  }
  key.reject_unknown_keys();
  parameters.reject_unknown_keys();
  if (const nlohmann::json* ranges = r.raw("ranges"); ranges && ranges->is_object()) {
    for (const auto& [variable, value] : ranges->items()) {
      JsonObjectReader range(r.diagnostics(), r.file(), json_pointer_append(r.pointer_of("ranges"), variable),
                             value);
      FitRange fr;
      fr.min = range.required_number("min", -1e30, 1e30, "the smallest input fitted").value_or(0);
      fr.max = range.required_number("max", -1e30, 1e30, "the largest input fitted").value_or(0);
      if (fr.max < fr.min) range.error("max", "is below min");
      range.reject_unknown_keys();
      fit.ranges[variable] = fr;
    }
  } else if (r.has("ranges")) {
    r.error("ranges", "expected an object", "{\"size_bytes\": {\"min\": ..., \"max\": ...}}");
  }
  JsonObjectReader error = r.object("error", true);
  fit.error.points = error.required_integer("points", 0, INT64_MAX).value_or(0);
  fit.error.mape = error.required_number("mape", 0, 1e6, "a fraction, 0.05 = 5 %").value_or(0);
  fit.error.loo_mape = error.number("loo_mape", 0, 1e6);  // null: too few points
  fit.error.max_ape = error.required_number("max_ape", 0, 1e6, "a fraction").value_or(0);
  error.reject_unknown_keys();
  if (const nlohmann::json* records = r.raw("records"); records && records->is_array()) {
    for (std::size_t i = 0; i < records->size(); ++i) {
      const auto& v = (*records)[i];
      if (!v.is_number_unsigned() || v.get<std::size_t>() >= record_count) {
        r.diagnostics().error(r.file(), json_pointer_append(r.pointer_of("records"), i),
                              fmt::format("expected an index into /records, got {}", describe_json_value(v)),
                              fmt::format("0 .. {}", record_count == 0 ? 0 : record_count - 1));
        continue;
      }
      fit.records.push_back(v.get<std::size_t>());
    }
  } else if (r.has("records")) {
    r.error("records", "expected an array of record indices");
  }
  fit.note = r.string("note").value_or("");
  r.reject_unknown_keys();
  return fit;
}

}  // namespace

std::string_view to_string(FitOrigin origin) {
  return origin == FitOrigin::kFitted ? "fitted" : "roofline_default";
}

std::string_view model_name(const FitModel& model) { return kModels[model.index()]; }

nlohmann::json profile_to_json(const Profile& profile) {
  nlohmann::json j = record_set_to_json(profile.measurements);
  j["schema"] = kProfileSchema;
  j["name"] = profile.name;
  j["gpu"] = profile.gpu;
  j["created_by"] = profile.created_by;
  nlohmann::json fits = nlohmann::json::array();
  for (const auto& f : profile.fits) {
    nlohmann::json key, parameters;
    std::visit(FitWriter{key, parameters}, f.model);
    nlohmann::json ranges = nlohmann::json::object();
    for (const auto& [variable, range] : f.ranges) ranges[variable] = {{"min", range.min}, {"max", range.max}};
    nlohmann::json fit = {{"id", f.id},
                          {"model", model_name(f.model)},
                          {"origin", to_string(f.origin)},
                          {"key", key},
                          {"parameters", parameters},
                          {"ranges", ranges},
                          {"error",
                           {{"points", f.error.points},
                            {"mape", f.error.mape},
                            {"loo_mape", f.error.loo_mape ? nlohmann::json(*f.error.loo_mape)
                                                          : nlohmann::json(nullptr)},
                            {"max_ape", f.error.max_ape}}},
                          {"records", f.records}};
    if (!f.note.empty()) fit["note"] = f.note;
    fits.push_back(fit);
  }
  j["fits"] = fits;
  return j;
}

Profile load_profile(const std::string& path) {
  JsonDocument doc = read_json_document(path, "--profile");
  Diagnostics diag;
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  r.required_choice("schema", {kProfileSchema}, fmt::format("\"{}\"", kProfileSchema));
  Profile p;
  p.name = r.required_string("name").value_or("");
  p.gpu = r.required_string("gpu").value_or("");
  p.created_by = r.string("created_by").value_or("");
  read_record_arrays(r, p.measurements);
  std::set<std::string, std::less<>> ids;
  if (const nlohmann::json* fits = r.raw("fits"); fits && fits->is_array()) {
    for (std::size_t i = 0; i < fits->size(); ++i) {
      JsonObjectReader f(diag, doc.file, json_pointer_append("/fits", i), (*fits)[i]);
      if (!f.is_object()) continue;
      Fit fit = read_fit(f, p.measurements.records.size());
      if (!ids.insert(fit.id).second) f.error("id", fmt::format("fit id \"{}\" is used twice", fit.id));
      p.fits.push_back(std::move(fit));
    }
  } else {
    r.error("fits", r.has("fits") ? "expected an array" : "is required", "a list of fitted cost models");
  }
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return p;
}

}  // namespace clustersim
