#include "sim/whatif/whatif_scenario.hpp"

#include <fmt/format.h>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"

namespace clustersim::sim {

namespace {

constexpr std::int64_t kMaxIndex = 1 << 24;
constexpr double kMaxFactor = 1e3;

std::uint32_t bit(traces::StragglerOpType type) { return 1u << static_cast<unsigned>(type); }

std::string valid_op_types() {
  std::string out;
  for (auto name : traces::op_type_names()) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

void read_op_type(const nlohmann::json& value, const std::string& file, const std::string& pointer,
                  Diagnostics& diag, std::uint32_t& mask) {
  if (!value.is_string()) {
    diag.error(file, pointer, fmt::format("expected an op type name, got {}", describe_json_value(value)),
               "one of " + valid_op_types());
    return;
  }
  auto type = traces::parse_op_type(value.get<std::string>());
  if (!type) {
    diag.error(file, pointer, fmt::format("unknown op type \"{}\"", value.get<std::string>()),
               "one of " + valid_op_types());
    return;
  }
  mask |= bit(*type);
}

WhatIfSelector read_selector(JsonObjectReader& r) {
  WhatIfSelector s;
  s.pointer = r.pointer();
  auto index = [&](std::string_view key) -> std::optional<int> {
    auto v = r.integer(key, 0, kMaxIndex);
    return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
  };
  s.rank = index("rank");
  s.dp_rank = index("dp_rank");
  s.stage = index("stage");
  if (const nlohmann::json* types = r.raw("optype")) {
    const std::string pointer = r.pointer_of("optype");
    if (types->is_array()) {
      for (std::size_t i = 0; i < types->size(); ++i) {
        read_op_type((*types)[i], r.file(), json_pointer_append(pointer, i), r.diagnostics(),
                     s.optype_mask);
      }
    } else {
      read_op_type(*types, r.file(), pointer, r.diagnostics(), s.optype_mask);
    }
  }
  r.reject_unknown_keys();
  return s;
}

WhatIfChange read_change(JsonObjectReader& r) {
  WhatIfChange c;
  JsonObjectReader select = r.object("select", true);
  c.select = read_selector(select);
  const int given = int{r.has("ideal")} + int{r.has("scale")} + int{r.has("layers")};
  if (given != 1) {
    r.diagnostics().error(r.file(), r.pointer(),
                          given == 0 ? "a change needs one of \"ideal\", \"scale\" or \"layers\""
                                     : "give only one of \"ideal\", \"scale\" and \"layers\"",
                          "e.g. {\"select\": {\"rank\": 0}, \"ideal\": true}");
  }
  if (auto ideal = r.boolean("ideal")) {
    if (!*ideal) r.error("ideal", "false changes nothing", "true: the ops take their ideal durations");
    c.kind = WhatIfChange::Kind::kIdeal;
  }
  if (auto scale = r.number("scale", 0.0, kMaxFactor)) {
    c.kind = WhatIfChange::Kind::kScale;
    c.factor = *scale;
  }
  if (r.has("layers")) {
    JsonObjectReader layers = r.object("layers", true);
    auto from = layers.required_integer("from", 1, kMaxIndex);
    auto to = layers.required_integer("to", 0, kMaxIndex);
    layers.reject_unknown_keys();
    const std::uint32_t compute = bit(traces::StragglerOpType::kForwardCompute) |
                                  bit(traces::StragglerOpType::kBackwardCompute);
    if ((c.select.optype_mask & ~compute) != 0) {
      r.error("layers", "\"layers\" scales compute ops only",
              "select forward-compute and/or backward-compute, or no optype");
    }
    if (c.select.optype_mask == 0) c.select.optype_mask = compute;
    c.kind = WhatIfChange::Kind::kScale;
    if (from && to) c.factor = static_cast<double>(*to) / static_cast<double>(*from);
  }
  r.reject_unknown_keys();
  return c;
}

}  // namespace

std::vector<WhatIfScenario> parse_whatif_scenarios(const nlohmann::json& document,
                                                   const std::string& file) {
  Diagnostics diag;
  std::vector<WhatIfScenario> out;
  JsonObjectReader root(diag, file, "", document);
  const nlohmann::json* list = root.raw("scenarios");
  root.reject_unknown_keys();
  if (root.is_object() && (list == nullptr || !list->is_array() || list->empty())) {
    diag.error(file, "/scenarios", "expected a non-empty array of scenarios",
               "{\"scenarios\": [{\"name\": \"...\", \"changes\": [...]}]}");
  }
  if (list != nullptr && list->is_array()) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      JsonObjectReader s(diag, file, json_pointer_append("/scenarios", i), (*list)[i]);
      WhatIfScenario scenario;
      scenario.name = s.required_string("name").value_or("");
      const nlohmann::json* changes = s.raw("changes");
      const std::string changes_pointer = s.pointer_of("changes");
      if (s.is_object() && (changes == nullptr || !changes->is_array() || changes->empty())) {
        diag.error(file, changes_pointer, "expected a non-empty array of changes",
                   "[{\"select\": {\"rank\": 0}, \"ideal\": true}]");
      } else if (changes != nullptr) {
        for (std::size_t j = 0; j < changes->size(); ++j) {
          JsonObjectReader c(diag, file, json_pointer_append(changes_pointer, j), (*changes)[j]);
          if (c.is_object()) scenario.changes.push_back(read_change(c));
        }
      }
      s.reject_unknown_keys();
      out.push_back(std::move(scenario));
    }
  }
  diag.throw_if_errors();
  return out;
}

std::vector<WhatIfScenario> read_whatif_scenarios(const std::string& path) {
  JsonDocument doc = read_json_document(path, "--scenario");
  return parse_whatif_scenarios(doc.value, doc.file);
}

}  // namespace clustersim::sim
