#include "models/inputs/routing_spec.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

// A positive number after `prefix` in `text`, or `fallback` when nothing follows.
std::optional<double> parameter_after(std::string_view text, std::size_t prefix, double fallback) {
  if (text.size() == prefix) return fallback;
  const std::string rest(text.substr(prefix));
  char* end = nullptr;
  const double value = std::strtod(rest.c_str(), &end);
  if (end != rest.c_str() + rest.size() || !(value > 0) || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

std::string_view routing_forms() {
  return "balanced, uniform, zipf<s>, dirichlet<alpha> (s, alpha > 0) or histogram:<file>";
}

std::optional<RoutingModel> parse_routing(std::string_view text) {
  RoutingModel m;
  std::optional<double> parameter = 0.0;
  if (text == "balanced") {
    m.kind = RoutingKind::kBalanced;
  } else if (text == "uniform") {
    m.kind = RoutingKind::kUniform;
  } else if (text.starts_with("zipf")) {
    m.kind = RoutingKind::kZipf;
    parameter = parameter_after(text, 4, 1.2);
  } else if (text.starts_with("dirichlet")) {
    m.kind = RoutingKind::kDirichlet;
    parameter = parameter_after(text, 9, 0.5);
  } else if (text.starts_with("histogram:") && text.size() > 10) {
    m.kind = RoutingKind::kHistogram;
    m.histogram_file = std::string(text.substr(10));
  } else {
    return std::nullopt;
  }
  if (!parameter) return std::nullopt;
  m.parameter = *parameter;
  return m;
}

std::vector<double> load_routing_histogram(const std::string& path, Diagnostics& diag) {
  JsonDocument doc = read_json_document(path, "moe_routing histogram");
  JsonObjectReader r(diag, doc.file, "", doc.value);
  std::vector<double> counts;
  const nlohmann::json* list = r.raw("tokens_per_expert");
  if (!list || !list->is_array() || list->empty()) {
    r.error("tokens_per_expert", list ? "expected a non-empty array" : "required key is missing",
            "tokens routed to each expert, one number per expert in expert order");
  } else {
    double total = 0;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto& v = (*list)[i];
      if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>())) {
        diag.error(doc.file, json_pointer_append(r.pointer_of("tokens_per_expert"), i),
                   fmt::format("{} is not a token count", describe_json_value(v)), "a number >= 0");
        continue;
      }
      counts.push_back(v.get<double>());
      total += counts.back();
    }
    if (counts.size() == list->size() && total <= 0) {
      r.error("tokens_per_expert", "every count is 0", "at least one expert must receive tokens");
    }
  }
  r.reject_unknown_keys();
  return counts;
}

}  // namespace clustersim
