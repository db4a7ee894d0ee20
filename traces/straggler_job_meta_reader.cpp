#include "traces/straggler_job_meta_reader.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"

namespace clustersim::traces {

namespace {

constexpr std::int64_t kMaxParallelSize = 1 << 24;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// A YAML scalar as JSON: integers stay integers, quoted or other text becomes a string.
nlohmann::json yaml_scalar(std::string_view value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    return std::string(value.substr(1, value.size() - 2));
  }
  std::int64_t number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec == std::errc() && end == value.data() + value.size() && !value.empty()) return number;
  return std::string(value);
}

// Flat YAML to a JSON object; `key_lines` remembers where each key was, for messages.
nlohmann::json flat_yaml_to_json(std::string_view text, const std::string& file,
                                 std::map<std::string, std::size_t, std::less<>>& key_lines) {
  Diagnostics diag;
  nlohmann::json object = nlohmann::json::object();
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) newline = text.size();
    std::string_view raw = text.substr(pos, newline - pos);
    pos = newline + 1;
    ++line_number;
    std::string where = fmt::format("line {}", line_number);
    std::string_view line = raw;
    if (auto hash = line.find(" #"); hash != std::string_view::npos) line = line.substr(0, hash);
    if (trim(line).empty() || trim(line).front() == '#') continue;
    if (line.front() == ' ' || line.front() == '\t' || trim(line).front() == '-') {
      diag.error(file, where, "nested or list YAML is not supported",
                 "one `key: value` per line, e.g. `dp_size: 4`");
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      diag.error(file, where, fmt::format("\"{}\" is not a `key: value` line", trim(line)),
                 "one `key: value` per line, e.g. `dp_size: 4`");
      continue;
    }
    std::string key(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (value.empty()) {
      diag.error(file, fmt::format("{}, key {}", where, key), "missing value",
                 "one `key: value` per line, e.g. `dp_size: 4`");
      continue;
    }
    if (key_lines.count(key)) {
      diag.error(file, fmt::format("{}, key {}", where, key),
                 fmt::format("key also given on line {}", key_lines.find(key)->second),
                 "give each key once");
      continue;
    }
    key_lines.emplace(key, line_number);
    object[key] = yaml_scalar(value);
  }
  diag.throw_if_errors();
  return object;
}

StragglerJobMeta read_meta_object(const nlohmann::json& object, const std::string& file,
                                  Diagnostics& diag) {
  StragglerJobMeta meta;
  meta.file = file;
  JsonObjectReader r(diag, file, "", object);
  meta.trial_name = r.required_string("trial_name").value_or("");
  meta.run_id = r.integer("run_id", 0, INT64_MAX).value_or(0);
  auto size = [&](std::string_view key) {
    return static_cast<int>(r.integer(key, 1, kMaxParallelSize).value_or(1));
  };
  meta.dp_size = static_cast<int>(r.required_integer("dp_size", 1, kMaxParallelSize).value_or(1));
  meta.pp_size = static_cast<int>(r.required_integer("pp_size", 1, 127).value_or(1));
  meta.dsp_size = size("dsp_size");
  meta.tp_size = size("tp_size");
  meta.vpp_size = static_cast<int>(r.integer("vpp_size", 1, 127).value_or(1));
  const std::int64_t product = std::int64_t{meta.dp_size} * meta.dsp_size * meta.pp_size *
                               meta.tp_size;
  auto world = r.integer("world_size", 1, INT64_MAX);
  if (world && *world != product) {
    r.error("world_size",
            fmt::format("world_size {} is not dp_size * dsp_size * pp_size * tp_size = {}", *world,
                        product),
            "fix the sizes so that they multiply to the world size");
  }
  meta.world_size = static_cast<int>(std::min<std::int64_t>(product, INT32_MAX));
  r.reject_unknown_keys();
  return meta;
}

}  // namespace

StragglerJobMeta parse_straggler_job_meta(std::string_view text, const std::string& file) {
  Diagnostics diag;
  if (looks_like_inline_json(text)) {
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw_input_error(file, "", fmt::format("malformed JSON: {}", e.what()),
                        "one JSON object with the metadata keys");
    }
    StragglerJobMeta meta = read_meta_object(object, file, diag);
    diag.throw_if_errors();
    return meta;
  }
  std::map<std::string, std::size_t, std::less<>> key_lines;
  nlohmann::json object = flat_yaml_to_json(text, file, key_lines);
  StragglerJobMeta meta = read_meta_object(object, file, diag);
  if (!diag.has_errors()) return meta;
  // Name YAML problems by line and key rather than by JSON pointer.
  std::vector<InputError> errors;
  for (InputError e : diag.errors()) {
    std::string key = e.pointer.empty() ? std::string() : e.pointer.substr(1);
    auto at = key_lines.find(key);
    e.pointer = at == key_lines.end() ? (key.empty() ? "" : "key " + key)
                                      : fmt::format("line {}, key {}", at->second, key);
    errors.push_back(std::move(e));
  }
  throw InputErrors(std::move(errors));
}

StragglerJobMeta read_straggler_job_meta(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error(path, "", "cannot open file", "check the path");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_straggler_job_meta(buffer.str(), path);
}

}  // namespace clustersim::traces
