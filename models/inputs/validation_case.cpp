#include "models/inputs/validation_case.hpp"

#include <fmt/format.h>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

// A field that may be a string (preset or path) or an inline object (kept as JSON text).
std::string input_field(JsonObjectReader& r, std::string_view key, bool required, std::string hint) {
  const nlohmann::json* v = r.raw(key);
  if (!v) {
    if (required) r.error(key, "is required", std::move(hint));
    return {};
  }
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return v->dump();
  r.error(key, fmt::format("expected a preset name, a path or an object, got {}", describe_json_value(*v)),
          std::move(hint));
  return {};
}

}  // namespace

ValidationSuite load_validation_cases(const std::string& path) {
  JsonDocument doc = read_json_document(path, "cases");
  Diagnostics diag;
  JsonObjectReader root(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  ValidationSuite suite;
  suite.file = doc.file;
  const nlohmann::json* cases = root.raw("cases");
  if (!cases || !cases->is_array() || cases->empty()) {
    root.error("cases", cases ? "expected a non-empty array" : "is required", "a list of validation cases");
  } else {
    for (std::size_t i = 0; i < cases->size(); ++i) {
      JsonObjectReader r(diag, doc.file, json_pointer_append("/cases", i), (*cases)[i]);
      if (!r.is_object()) continue;
      ValidationCase c;
      c.pointer = r.pointer();
      c.id = r.required_string("id").value_or("");
      c.source = r.required_string("source").value_or("");
      c.group = r.string("group").value_or(c.source.substr(0, c.source.find(',')));
      c.model = input_field(r, "model", true, "a model preset, a config.json path, or an inline config object");
      c.cluster = input_field(r, "cluster", true, "a cluster preset, a path, or an inline object");
      c.plan = input_field(r, "plan", true, "an object with Megatron-LM argument names, a path or a preset");
      c.profile = r.string("profile").value_or("");
      c.num_gpus = r.required_integer("num_gpus", 1, std::int64_t{1} << 24).value_or(1);
      c.tolerance = r.required_number("tolerance", 0.0, 10.0, "a fraction: 0.10 = 10 %").value_or(0.1);
      auto convention = r.choice("flops_convention", {"model", "full_attention", "megatron_sc21", "hardware"});
      if (convention == "full_attention") c.flops_convention = FlopsConvention::kFullAttention;
      if (convention == "megatron_sc21") c.flops_convention = FlopsConvention::kMegatronSc21;
      if (convention == "hardware") c.flops_convention = FlopsConvention::kHardware;
      JsonObjectReader measured = r.object("measured", true);
      for (const char* metric : kValidationMetrics) {
        if (auto v = measured.positive_number(metric)) c.measured[metric] = *v;
      }
      if (measured.is_object() && c.measured.empty()) {
        r.error("measured", "names no metric", "one or more of step_time_s, tokens_per_s, tokens_per_s_per_gpu, "
                                                "tflops_per_gpu, mfu");
      }
      measured.reject_unknown_keys();
      r.reject_unknown_keys();
      suite.cases.push_back(std::move(c));
    }
  }
  root.reject_unknown_keys();
  diag.throw_if_errors();
  return suite;
}

}  // namespace clustersim
