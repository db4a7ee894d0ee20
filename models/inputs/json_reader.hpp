#pragma once
// Strict, error-collecting reading of JSON objects. Every getter records what it was asked for,
// so reject_unknown_keys() can name keys nobody reads, with a "did you mean" hint. Bad values
// are reported to Diagnostics with file and JSON pointer, never thrown one at a time.
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

// Reads a JSON document. `source` is a path, or inline JSON when it starts with '{'
// (then `label` names it in messages, e.g. "--model"). Throws InputErrors on a missing file
// or malformed JSON, naming line and column.
struct JsonDocument {
  std::string file;  // how messages name the document
  nlohmann::json value;
};
JsonDocument read_json_document(const std::string& source, const std::string& label);
bool looks_like_inline_json(std::string_view source);

// Appends `key` to `pointer`, escaping per RFC 6901.
std::string json_pointer_append(const std::string& pointer, std::string_view key);
std::string json_pointer_append(const std::string& pointer, std::size_t index);

// The closest of `candidates` to `word` by edit distance, if close enough to be a likely typo.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// The candidate `word` is most likely a misspelling of: at most two edits away and at most one
// edit per four characters (after '-' -> '_' and lower case), the fewest edits first. Stricter
// than closest_match: a hit is treated as an error, not a hint, so a different key that merely
// shares words ("num_layers" vs "recompute_num_layers") must not qualify.
std::optional<std::string> likely_typo(std::string_view word, const std::vector<std::string>& candidates);

// Short human-readable description of a JSON value's type and value, e.g. `string "8"`.
std::string describe_json_value(const nlohmann::json& value);

class JsonObjectReader {
 public:
  // Reports an error if `value` is not an object; getters then return nullopt.
  JsonObjectReader(Diagnostics& diag, std::string file, std::string pointer,
                   const nlohmann::json& value);

  bool is_object() const { return object_ != nullptr; }
  bool has(std::string_view key) const;  // present and not null
  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }
  std::string pointer_of(std::string_view key) const { return json_pointer_append(pointer_, key); }
  const nlohmann::json* raw(std::string_view key);  // marks the key known; null if absent

  // Optional getters: nullopt when absent or null; an error (and nullopt) when present but bad.
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<double> number(std::string_view key, double min, double max);
  std::optional<double> positive_number(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::string> string(std::string_view key);
  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> allowed);

  // Required getters: an error naming the key when absent.
  std::optional<std::int64_t> required_integer(std::string_view key, std::int64_t min,
                                               std::int64_t max);
  std::optional<double> required_positive_number(std::string_view key);
  std::optional<std::string> required_string(std::string_view key);
  std::optional<double> required_number(std::string_view key, double min, double max,
                                        std::string hint_if_missing);
  std::optional<std::string> required_choice(std::string_view key,
                                             std::initializer_list<std::string_view> allowed,
                                             std::string hint_if_missing);

  // Nested object; the returned reader is not an object (all getters nullopt) when absent/bad.
  JsonObjectReader object(std::string_view key, bool required);

  // Declares keys that are accepted but not read (documentation fields, for example).
  void allow(std::initializer_list<std::string_view> keys);
  // Reports every key never asked about, with the closest known key as a hint. Keys starting
  // with '_' (`_source`, `_comment`) are documentation and always accepted.
  void reject_unknown_keys();
  // The keys never asked about (same rule), for callers that warn instead of failing.
  std::vector<std::string> unknown_keys() const;
  // The hint reject_unknown_keys gives for an unknown `key`: "did you mean ...?" with the closest
  // known key, else the list of valid keys.
  std::string unknown_key_hint(std::string_view key) const;
  // For documents whose unknown keys are tolerated (a Hugging Face config.json carries many
  // that do not matter here): reports as errors only the unknown keys that are likely_typo()s of
  // a known key ("num_key_value_head" -> "num_key_value_heads"). Returns those keys.
  std::vector<std::string> reject_likely_typos();
  // The known key `key` is a likely misspelling of, if any.
  std::optional<std::string> likely_typo_of(std::string_view key) const;

  Diagnostics& diagnostics() { return diag_; }
  void error(std::string_view key, std::string message, std::string hint = {});

 private:
  const nlohmann::json* lookup(std::string_view key);
  // The value if it is a number; reports a type error (with `hint`) otherwise.
  const nlohmann::json* number_value(std::string_view key, std::string hint);
  // True when the key is present; reports it as missing otherwise.
  bool present_or_reported(std::string_view key, std::string hint = {});
  void missing(std::string_view key, std::string hint);

  Diagnostics& diag_;
  std::string file_;
  std::string pointer_;
  const nlohmann::json* object_ = nullptr;
  std::set<std::string, std::less<>> known_;
};

}  // namespace clustersim
