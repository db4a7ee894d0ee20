#include "models/inputs/document_lengths.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

DocumentLengths read_histogram(JsonObjectReader& h) {
  DocumentLengths d;
  // Returns the list's length as written (bad entries are reported, not kept).
  auto numbers = [&](const char* key, bool positive, std::vector<double>& out) -> std::size_t {
    const nlohmann::json* v = h.raw(key);
    if (v == nullptr) {
      h.error(key, "required key is missing", "a list of numbers, one per histogram bin");
      return 0;
    }
    if (!v->is_array() || v->empty()) {
      h.error(key, "expected a non-empty list of numbers", "one number per histogram bin");
      return 0;
    }
    for (std::size_t i = 0; i < v->size(); ++i) {
      const nlohmann::json& x = (*v)[i];
      const double value = x.is_number() ? x.get<double>() : -1;
      if (!x.is_number() || value < 0 || (positive && value <= 0)) {
        h.diagnostics().error(h.file(), h.pointer_of(key) + "/" + std::to_string(i),
                fmt::format("expected a number {} 0, got {}", positive ? ">" : ">=", describe_json_value(x)),
                positive ? "document lengths in tokens" : "relative frequencies");
        continue;
      }
      out.push_back(value);
    }
    return v->size();
  };
  const std::size_t n_tokens = numbers("tokens", true, d.tokens);
  const std::size_t n_weights = numbers("weights", false, d.weights);
  d.source = h.required_string("source").value_or("");
  if (n_tokens > 0 && n_weights > 0 && n_tokens != n_weights) {
    h.error("weights", fmt::format("has {} bins, tokens has {}", n_weights, n_tokens), "one weight per document length");
  }
  double total = 0;
  for (double w : d.weights) total += w;
  if (!d.weights.empty() && total <= 0) h.error("weights", "all weights are 0", "at least one bin needs a positive weight");
  h.reject_unknown_keys();
  return d;
}

}  // namespace

std::optional<DocumentLengths> read_document_lengths(JsonObjectReader& plan, const char* key,
                                                     const std::string& plan_file) {
  const nlohmann::json* v = plan.raw(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_object()) {
    JsonObjectReader h(plan.diagnostics(), plan.file(), plan.pointer_of(key), *v);
    return read_histogram(h);
  }
  if (!v->is_string()) {
    plan.error(key, fmt::format("expected a file name or an object, got {}", describe_json_value(*v)),
               "{\"tokens\": [...], \"weights\": [...], \"source\": \"...\"} or a JSON file holding it");
    return std::nullopt;
  }
  std::filesystem::path path(v->get<std::string>());
  if (path.is_relative() && !plan_file.empty() && std::filesystem::exists(std::filesystem::path(plan_file).parent_path() / path)) {
    path = std::filesystem::path(plan_file).parent_path() / path;
  }
  try {
    JsonDocument doc = read_json_document(path.string(), "document_lengths");
    JsonObjectReader h(plan.diagnostics(), doc.file, "", doc.value);
    if (!h.is_object()) return std::nullopt;
    return read_histogram(h);
  } catch (const InputErrors& e) {
    for (const InputError& err : e.errors()) plan.diagnostics().error(err.file, err.pointer, err.message, err.hint);
    return std::nullopt;
  }
}

}  // namespace clustersim
