#include "models/inputs/json_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace clustersim {

bool looks_like_inline_json(std::string_view source) {
  auto first = source.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && source[first] == '{';
}

namespace {

std::pair<std::size_t, std::size_t> line_and_column(const std::string& text, std::size_t byte) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < std::min(byte, text.size()); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

}  // namespace

JsonDocument read_json_document(const std::string& source, const std::string& label) {
  JsonDocument doc;
  std::string text;
  if (looks_like_inline_json(source)) {
    doc.file = label;
    text = source;
  } else {
    doc.file = source;
    std::error_code ec;
    if (std::filesystem::is_directory(source, ec)) {
      throw_input_error(source, "", "is a directory, not a JSON file", "give the path of a file");
    }
    std::ifstream in(source, std::ios::binary);
    if (!in) throw_input_error(source, "", "cannot open file", "check the path");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  try {
    doc.value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    auto [line, column] = line_and_column(text, e.byte == 0 ? 0 : e.byte - 1);
    std::string what = e.what();
    auto colon = what.rfind(": ");
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    throw_input_error(doc.file, "", fmt::format("malformed JSON at line {}, column {}: {}", line,
                                                column, reason),
                      "the file must be one JSON object");
  } catch (const nlohmann::json::exception& e) {
    // Well-formed but unrepresentable, e.g. a number overflowing a double ("1e999").
    std::string what = e.what();
    auto bracket = what.find("] ");
    throw_input_error(doc.file, "", fmt::format("unreadable JSON: {}", bracket == std::string::npos ? what : what.substr(bracket + 2)),
                      "numbers must fit in a double");
  }
  return doc;
}

std::string json_pointer_append(const std::string& pointer, std::string_view key) {
  std::string out = pointer;
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string json_pointer_append(const std::string& pointer, std::size_t index) {
  return fmt::format("{}/{}", pointer, index);
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<std::string> split_words(const std::string& key) {
  std::vector<std::string> words;
  std::size_t start = 0;
  while (start <= key.size()) {
    auto end = key.find('_', start);
    if (end == std::string::npos) end = key.size();
    if (end > start) words.push_back(key.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

std::string normalise_key(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '-') c = '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::optional<std::string> likely_typo(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string normal = normalise_key(word);
  const std::size_t max_edits = std::min<std::size_t>(2, normal.size() / 4);
  std::optional<std::string> best;
  std::size_t best_edits = max_edits + 1;
  for (const auto& candidate : candidates) {
    const std::size_t edits = edit_distance(normal, normalise_key(candidate));
    if (edits > 0 && edits < best_edits) {
      best_edits = edits;
      best = candidate;
    }
  }
  return best;
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  // Ranked first by how many '_'-separated words differ (a missing "model_" is one word), then
  // by edit distance. A candidate qualifies when it is a few edits away or contains every word.
  const std::string normal = normalise_key(word);
  const std::vector<std::string> words = split_words(normal);
  const std::size_t max_edits = std::max<std::size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  std::pair<std::size_t, std::size_t> best_score{SIZE_MAX, SIZE_MAX};
  for (const auto& candidate : candidates) {
    const std::string c = normalise_key(candidate);
    const std::vector<std::string> c_words = split_words(c);
    std::size_t missing = 0;
    for (const auto& w : words) {
      if (std::find(c_words.begin(), c_words.end(), w) == c_words.end()) ++missing;
    }
    const std::size_t extra = c_words.size() + missing - words.size();
    const std::size_t edits = edit_distance(normal, c);
    if (edits > max_edits && missing > 0) continue;
    std::pair<std::size_t, std::size_t> score{missing + extra, edits};
    if (score < best_score) {
      best_score = score;
      best = candidate;
    }
  }
  return best;
}

std::string describe_json_value(const nlohmann::json& value) {
  // Values built from non-JSON sources (a pasted command line, YAML) may hold invalid UTF-8;
  // show it replaced rather than failing to describe it.
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  switch (value.type()) {
    case nlohmann::json::value_t::string: return "string " + text;
    case nlohmann::json::value_t::boolean: return "boolean " + text;
    case nlohmann::json::value_t::number_float:
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "number " + text;
    case nlohmann::json::value_t::array: return "array " + text;
    case nlohmann::json::value_t::object: return "object " + text;
    case nlohmann::json::value_t::null: return "null";
    default: return text;
  }
}

JsonObjectReader::JsonObjectReader(Diagnostics& diag, std::string file, std::string pointer,
                                   const nlohmann::json& value)
    : diag_(diag), file_(std::move(file)), pointer_(std::move(pointer)) {
  if (value.is_object()) {
    object_ = &value;
  } else {
    diag_.error(file_, pointer_, fmt::format("expected a JSON object, got {}", describe_json_value(value)));
  }
}

bool JsonObjectReader::has(std::string_view key) const {
  if (!object_) return false;
  auto it = object_->find(key);
  return it != object_->end() && !it->is_null();
}

const nlohmann::json* JsonObjectReader::lookup(std::string_view key) {
  known_.emplace(key);
  if (!object_) return nullptr;
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::json* JsonObjectReader::raw(std::string_view key) { return lookup(key); }

void JsonObjectReader::error(std::string_view key, std::string message, std::string hint) {
  diag_.error(file_, pointer_of(key), std::move(message), std::move(hint));
}

void JsonObjectReader::missing(std::string_view key, std::string hint) {
  if (!object_) return;  // the enclosing problem was already reported
  diag_.error(file_, pointer_of(key), "required key is missing", std::move(hint));
}

std::optional<std::int64_t> JsonObjectReader::integer(std::string_view key, std::int64_t min,
                                                      std::int64_t max) {
  const nlohmann::json* v = lookup(key);
  if (!v) return std::nullopt;
  std::optional<std::int64_t> result;
  if (v->is_number_integer()) {
    result = v->get<std::int64_t>();
  } else if (v->is_number_unsigned()) {
    auto u = v->get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(INT64_MAX)) result = static_cast<std::int64_t>(u);
  } else if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      result = static_cast<std::int64_t>(d);
    }
  }
  if (!result) {
    error(key, fmt::format("expected an integer, got {}", describe_json_value(*v)),
          fmt::format("an integer in [{}, {}]", min, max));
    return std::nullopt;
  }
  if (*result < min || *result > max) {
    error(key, fmt::format("{} is out of range", *result),
          max == INT64_MAX ? fmt::format("an integer >= {}", min)
                           : fmt::format("an integer in [{}, {}]", min, max));
    return std::nullopt;
  }
  return result;
}

const nlohmann::json* JsonObjectReader::number_value(std::string_view key, std::string hint) {
  const nlohmann::json* v = lookup(key);
  if (v && !v->is_number()) {
    error(key, fmt::format("expected a number, got {}", describe_json_value(*v)), std::move(hint));
    return nullptr;
  }
  return v;
}

std::optional<double> JsonObjectReader::number(std::string_view key, double min, double max) {
  const nlohmann::json* v = number_value(key, fmt::format("a number in [{:g}, {:g}]", min, max));
  if (!v) return std::nullopt;
  double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) {
    error(key, fmt::format("{} is out of range", v->dump()),
          fmt::format("a number in [{:g}, {:g}]", min, max));
    return std::nullopt;
  }
  return d;
}

std::optional<double> JsonObjectReader::positive_number(std::string_view key) {
  const nlohmann::json* v = number_value(key, "a number > 0");
  if (!v) return std::nullopt;
  double d = v->get<double>();
  if (!std::isfinite(d) || d <= 0) {
    error(key, fmt::format("{} is not positive", v->dump()), "a number > 0");
    return std::nullopt;
  }
  return d;
}

std::optional<bool> JsonObjectReader::boolean(std::string_view key) {
  const nlohmann::json* v = lookup(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    error(key, fmt::format("expected true or false, got {}", describe_json_value(*v)));
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<std::string> JsonObjectReader::string(std::string_view key) {
  const nlohmann::json* v = lookup(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    error(key, fmt::format("expected a string, got {}", describe_json_value(*v)));
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<std::string> JsonObjectReader::choice(
    std::string_view key, std::initializer_list<std::string_view> allowed) {
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + fmt::format("\"{}\"", a);
  const nlohmann::json* v = lookup(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    error(key, fmt::format("expected a string, got {}", describe_json_value(*v)),
          "one of " + list);
    return std::nullopt;
  }
  auto s = v->get<std::string>();
  for (auto a : allowed) {
    if (s == a) return s;
  }
  error(key, fmt::format("\"{}\" is not a valid value", s), "one of " + list);
  return std::nullopt;
}

bool JsonObjectReader::present_or_reported(std::string_view key, std::string hint) {
  if (has(key)) return true;
  known_.emplace(key);
  missing(key, std::move(hint));
  return false;
}

std::optional<std::int64_t> JsonObjectReader::required_integer(std::string_view key,
                                                               std::int64_t min,
                                                               std::int64_t max) {
  return present_or_reported(key) ? integer(key, min, max) : std::nullopt;
}

std::optional<double> JsonObjectReader::required_positive_number(std::string_view key) {
  return present_or_reported(key) ? positive_number(key) : std::nullopt;
}

std::optional<std::string> JsonObjectReader::required_string(std::string_view key) {
  return present_or_reported(key) ? string(key) : std::nullopt;
}

std::optional<double> JsonObjectReader::required_number(std::string_view key, double min,
                                                        double max, std::string hint_if_missing) {
  return present_or_reported(key, std::move(hint_if_missing)) ? number(key, min, max)
                                                              : std::nullopt;
}

std::optional<std::string> JsonObjectReader::required_choice(
    std::string_view key, std::initializer_list<std::string_view> allowed,
    std::string hint_if_missing) {
  return present_or_reported(key, std::move(hint_if_missing)) ? choice(key, allowed)
                                                              : std::nullopt;
}

JsonObjectReader JsonObjectReader::object(std::string_view key, bool required) {
  static const nlohmann::json kEmptyObject = nlohmann::json::object();
  const nlohmann::json* v = lookup(key);
  if (!v) {
    if (required) missing(key, {});
    // A reader that reports nothing further: all its getters return nullopt.
    JsonObjectReader absent(diag_, file_, pointer_of(key), kEmptyObject);
    absent.object_ = nullptr;
    return absent;
  }
  return JsonObjectReader(diag_, file_, pointer_of(key), *v);
}

void JsonObjectReader::allow(std::initializer_list<std::string_view> keys) {
  for (auto k : keys) known_.emplace(k);
}

std::vector<std::string> JsonObjectReader::unknown_keys() const {
  std::vector<std::string> unknown;
  if (!object_) return unknown;
  for (const auto& [key, value] : object_->items()) {
    if (!known_.count(key) && !key.starts_with('_')) unknown.push_back(key);
  }
  return unknown;
}

std::optional<std::string> JsonObjectReader::likely_typo_of(std::string_view key) const {
  return likely_typo(key, std::vector<std::string>(known_.begin(), known_.end()));
}

std::vector<std::string> JsonObjectReader::reject_likely_typos() {
  std::vector<std::string> typos;
  for (const auto& key : unknown_keys()) {
    if (auto near = likely_typo_of(key)) {
      diag_.error(file_, pointer_of(key), "unknown key", fmt::format("did you mean \"{}\"?", *near));
      typos.push_back(key);
    }
  }
  return typos;
}

std::string JsonObjectReader::unknown_key_hint(std::string_view key) const {
  const std::vector<std::string> known(known_.begin(), known_.end());
  auto near = closest_match(key, known);
  return near ? fmt::format("did you mean \"{}\"?", *near) : fmt::format("valid keys: {}", fmt::join(known, ", "));
}

void JsonObjectReader::reject_unknown_keys() {
  for (const auto& key : unknown_keys()) diag_.error(file_, pointer_of(key), "unknown key", unknown_key_hint(key));
}

}  // namespace clustersim
