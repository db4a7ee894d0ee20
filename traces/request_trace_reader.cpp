#include "traces/request_trace_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

namespace clustersim::traces {

namespace {

constexpr int kMaxErrors = 20;  // stop collecting after this many bad lines

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '"')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

bool parse_int(std::string_view s, std::int64_t& out) {
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// "YYYY-MM-DD HH:MM:SS[.frac]" (or with 'T'), or plain seconds.
bool parse_timestamp(std::string_view s, double& out) {
  s = trim(s);
  if (parse_double(s, out)) return true;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
      s[16] != ':') {
    return false;
  }
  std::int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double sec = 0;
  if (!parse_int(s.substr(0, 4), y) || !parse_int(s.substr(5, 2), mo) || !parse_int(s.substr(8, 2), d) ||
      !parse_int(s.substr(11, 2), h) || !parse_int(s.substr(14, 2), mi)) {
    return false;
  }
  std::string_view rest = s.substr(17);
  auto end = rest.find_first_not_of("0123456789.");
  if (end != std::string_view::npos) rest = rest.substr(0, end);  // time zone suffix ignored
  if (!parse_double(rest, sec)) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec >= 61) return false;
  out = static_cast<double>(days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d))) * 86400.0 +
        static_cast<double>(h * 3600 + mi * 60) + sec;
  return true;
}

struct LineErrors {
  const std::string& file;
  std::vector<InputError> errors;
  void add(std::size_t line, std::string message, std::string hint = {}) {
    if (errors.size() < kMaxErrors) errors.push_back({file, fmt::format("line {}", line), std::move(message), std::move(hint)});
  }
};

std::int32_t scaled(double tokens, double scale) {
  return static_cast<std::int32_t>(std::clamp(std::round(tokens * scale), 1.0, 1e9));
}

void read_azure(std::istream& in, const TraceSpec& spec, RequestSet& set, LineErrors& errors,
                std::vector<double>& times) {
  std::string line;
  std::size_t n = 0;
  int col_t = -1, col_in = -1, col_out = -1;
  while (std::getline(in, line)) {
    ++n;
    std::string_view v = trim(line);
    if (v.empty()) continue;
    std::vector<std::string_view> cells;
    std::size_t start = 0;
    while (true) {
      auto comma = v.find(',', start);
      cells.push_back(v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (col_t < 0) {  // header
      for (int i = 0; i < static_cast<int>(cells.size()); ++i) {
        auto c = trim(cells[static_cast<std::size_t>(i)]);
        if (c == "TIMESTAMP") col_t = i;
        else if (c == "ContextTokens") col_in = i;
        else if (c == "GeneratedTokens") col_out = i;
      }
      if (col_t < 0 || col_in < 0 || col_out < 0) {
        errors.add(n, "expected the header TIMESTAMP,ContextTokens,GeneratedTokens",
                   "the Azure LLM inference trace format");
        return;
      }
      continue;
    }
    const auto need = static_cast<std::size_t>(std::max({col_t, col_in, col_out}));
    if (cells.size() <= need) {
      errors.add(n, fmt::format("expected {} columns, got {}", need + 1, cells.size()));
      continue;
    }
    double t = 0;
    std::int64_t in_tokens = 0, out_tokens = 0;
    if (!parse_timestamp(cells[static_cast<std::size_t>(col_t)], t)) {
      errors.add(n, fmt::format("TIMESTAMP \"{}\" is neither seconds nor a date-time", trim(cells[static_cast<std::size_t>(col_t)])),
                 "e.g. 2023-11-16 18:15:46.6805900");
      continue;
    }
    if (!parse_int(cells[static_cast<std::size_t>(col_in)], in_tokens) || in_tokens < 1) {
      errors.add(n, fmt::format("ContextTokens \"{}\" is not a positive integer", trim(cells[static_cast<std::size_t>(col_in)])));
      continue;
    }
    if (!parse_int(cells[static_cast<std::size_t>(col_out)], out_tokens) || out_tokens < 1) {
      errors.add(n, fmt::format("GeneratedTokens \"{}\" is not a positive integer", trim(cells[static_cast<std::size_t>(col_out)])));
      continue;
    }
    ServeRequest r;
    r.input_tokens = scaled(static_cast<double>(in_tokens), spec.length_scale);
    r.output_tokens = scaled(static_cast<double>(out_tokens), spec.length_scale);
    set.requests.push_back(r);
    times.push_back(t);
    if (spec.max_requests > 0 && static_cast<std::int64_t>(times.size()) >= spec.max_requests) return;
  }
  if (col_t < 0) errors.add(n, "the trace is empty", "expected a header TIMESTAMP,ContextTokens,GeneratedTokens");
}

void read_mooncake(std::istream& in, const TraceSpec& spec, RequestSet& set, LineErrors& errors,
                   std::vector<double>& times) {
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (trim(line).empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      errors.add(n, "not a JSON object", "one {\"timestamp\", \"input_length\", \"output_length\", \"hash_ids\"} per line");
      continue;
    }
    auto number = [&](const char* key, bool integer, double min) -> std::optional<double> {
      auto it = j.find(key);
      if (it == j.end()) {
        errors.add(n, fmt::format("missing \"{}\"", key));
        return std::nullopt;
      }
      if (!it->is_number() || (integer && !it->is_number_integer()) || it->get<double>() < min) {
        errors.add(n, fmt::format("\"{}\" must be {} >= {}, got {}", key, integer ? "an integer" : "a number", min, it->dump()));
        return std::nullopt;
      }
      return it->get<double>();
    };
    auto t = number("timestamp", false, 0);
    auto in_len = number("input_length", true, 1);
    auto out_len = number("output_length", true, 1);
    if (!t || !in_len || !out_len) continue;
    ServeRequest r;
    r.input_tokens = scaled(*in_len, spec.length_scale);
    r.output_tokens = scaled(*out_len, spec.length_scale);
    r.hash_begin = static_cast<std::uint32_t>(set.hash_ids.size());
    if (auto h = j.find("hash_ids"); h != j.end()) {
      if (!h->is_array()) {
        errors.add(n, "\"hash_ids\" must be an array of integers");
        continue;
      }
      for (const auto& x : *h) {
        if (!x.is_number_integer()) {
          errors.add(n, fmt::format("\"hash_ids\" holds {}, not an integer", x.dump()));
          break;
        }
        set.hash_ids.push_back(x.get<std::uint64_t>());
      }
    }
    r.hash_end = static_cast<std::uint32_t>(set.hash_ids.size());
    set.requests.push_back(r);
    times.push_back(*t / 1000.0);  // milliseconds
    if (spec.max_requests > 0 && static_cast<std::int64_t>(times.size()) >= spec.max_requests) return;
  }
}

}  // namespace

RequestSet read_request_trace(const TraceSpec& spec) {
  std::ifstream in(spec.path);
  if (!in) throw_input_error(spec.path, "", "cannot open request trace", "check the trace path");
  RequestSet set;
  std::vector<double> times;
  LineErrors errors{spec.path, {}};
  if (spec.format == "mooncake") {
    read_mooncake(in, spec, set, errors, times);
  } else {
    read_azure(in, spec, set, errors, times);
  }
  if (!errors.errors.empty()) throw InputErrors(std::move(errors.errors));
  if (set.requests.empty()) throw_input_error(spec.path, "", "the trace holds no requests");
  // Sort by arrival (stable: ties keep file order), shift to 0, scale.
  std::vector<std::size_t> order(times.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return times[a] < times[b]; });
  const double t0 = times[order.front()];
  RequestSet sorted;
  sorted.hash_ids = std::move(set.hash_ids);
  sorted.requests.reserve(order.size());
  for (auto i : order) {
    ServeRequest r = set.requests[i];
    r.arrival_s = (times[i] - t0) * spec.time_scale;
    sorted.requests.push_back(r);
  }
  return sorted;
}

}  // namespace clustersim::traces
