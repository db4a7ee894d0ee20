#include "models/inputs/validation_case.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "models/inputs/json_reader.hpp"
#include "models/inputs/train_plan.hpp"

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

// An unstated setting's value on a plan object: null leaves the argument out.
void set_plan_argument(nlohmann::json& plan, const std::string& key, const nlohmann::json& value) {
  if (value.is_null()) {
    plan.erase(key);
  } else {
    plan[key] = value;
  }
}

// "unstated": {"<plan argument>": [values...]}: scalars or null, the inline plan's own value among
// them, at most kMaxUnstatedSettings combinations.
void read_unstated(JsonObjectReader& r, const nlohmann::json* plan, ValidationCase& c) {
  const nlohmann::json* unstated = r.raw("unstated");
  if (!unstated) return;
  const std::string pointer = r.pointer_of("unstated");
  if (!unstated->is_object() || unstated->empty()) {
    r.error("unstated", fmt::format("expected an object of plan arguments, got {}", describe_json_value(*unstated)),
            "e.g. {\"micro_batch_size\": [1, 2, 4]}: the values a setting the source does not state could have had");
    return;
  }
  if (!plan || !plan->is_object()) {
    r.error("unstated", "needs the case's plan inline (an object), to vary its arguments", "write the plan object into the case");
    return;
  }
  std::size_t combinations = 1;
  JsonObjectReader field(r.diagnostics(), r.file(), pointer, *unstated);
  for (const auto& [key, values] : unstated->items()) {
    if (!values.is_array() || values.size() < 2) {
      field.error(key, fmt::format("expected a list of at least two values, got {}", describe_json_value(values)),
                  "the values the setting could have had, the plan's own among them");
      continue;
    }
    std::vector<std::string> texts;
    bool scalars = true;
    for (const auto& v : values) {
      scalars = scalars && (v.is_null() || v.is_number() || v.is_boolean() || v.is_string());
      texts.push_back(v.dump());
    }
    if (!scalars) {
      field.error(key, "lists a value that is an object or an array", "numbers, true/false, strings or null (argument left out)");
      continue;
    }
    const auto own = plan->find(key);
    const std::string own_text = own == plan->end() ? "null" : own->dump();
    if (std::find(texts.begin(), texts.end(), own_text) == texts.end()) {
      field.error(key, fmt::format("does not list the plan's own value {}", own_text),
                  "the range must include the prediction validate reports; add it to the list");
      continue;
    }
    // Each value must make a plan the plan reader accepts (a known argument, a valid value);
    // whether it suits the case's GPUs is validate's to find out.
    bool readable = true;
    for (const auto& v : values) {
      nlohmann::json varied = *plan;
      set_plan_argument(varied, key, v);
      try {
        Diagnostics plan_diag;
        load_train_plan(varied.dump(), plan_diag);
      } catch (const InputErrors& e) {
        const InputError& first = e.errors().front();
        field.error(key, fmt::format("value {}: {}{}", v.dump(), first.pointer.empty() ? "" : first.pointer.substr(1) + ": ",
                                     first.message),
                    first.hint);
        readable = false;
        break;
      }
    }
    if (!readable) continue;
    combinations *= texts.size();
    c.unstated.emplace_back(key, std::move(texts));
  }
  if (combinations > kMaxUnstatedSettings) {
    r.error("unstated", fmt::format("asks for {} combinations of settings", combinations),
            fmt::format("at most {}: list fewer values", kMaxUnstatedSettings));
  }
}

}  // namespace

std::string plan_with_unstated_setting(const ValidationCase& c, std::size_t k) {
  nlohmann::json plan = nlohmann::json::parse(c.plan);
  for (const auto& [key, values] : c.unstated) {
    set_plan_argument(plan, key, nlohmann::json::parse(values[k % values.size()]));
    k /= values.size();
  }
  return plan.dump();
}

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
      read_unstated(r, r.raw("plan"), c);
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
