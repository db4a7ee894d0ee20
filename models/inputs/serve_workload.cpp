#include "models/inputs/serve_workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <tuple>
#include <vector>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

LengthSpec read_length(JsonObjectReader& r) {
  LengthSpec s;
  const std::string kind =
      r.required_choice("distribution", {"fixed", "uniform", "lognormal", "empirical"}, "how lengths are drawn")
          .value_or("fixed");
  s.max = r.number("max", 1, 1e9).value_or(0);
  if (kind == "fixed") {
    s.kind = LengthDistribution::kFixed;
    s.value = r.required_number("value", 1, 1e9, "tokens").value_or(1);
  } else if (kind == "uniform") {
    s.kind = LengthDistribution::kUniform;
    s.min = r.required_number("min", 1, 1e9, "smallest length").value_or(1);
    s.max = r.required_number("max", 1, 1e9, "largest length").value_or(1);
    if (s.max < s.min) r.error("max", fmt::format("{} is below min {}", s.max, s.min));
  } else if (kind == "lognormal") {
    s.kind = LengthDistribution::kLognormal;
    s.mean = r.required_number("mean", 1, 1e9, "mean length in tokens").value_or(1);
    s.sigma = r.number("sigma", 0.0, 5.0).value_or(1.0);
    s.min = r.number("min", 1, 1e9).value_or(1);
  } else {
    s.kind = LengthDistribution::kEmpirical;
    const nlohmann::json* t = r.raw("table");
    if (!t) {
      r.error("table", "required key is missing", "[[tokens, weight], ...]");
    } else if (!t->is_array() || t->empty()) {
      r.error("table", fmt::format("expected a non-empty array of [tokens, weight], got {}", describe_json_value(*t)));
    } else {
      for (std::size_t i = 0; i < t->size(); ++i) {
        const auto& row = (*t)[i];
        if (!row.is_array() || row.size() != 2 || !row[0].is_number() || !row[1].is_number() ||
            row[0].get<double>() < 1 || row[1].get<double>() < 0) {
          r.diagnostics().error(r.file(), json_pointer_append(r.pointer_of("table"), i),
                                fmt::format("expected [tokens >= 1, weight >= 0], got {}", describe_json_value(row)));
          continue;
        }
        s.table.emplace_back(row[0].get<double>(), row[1].get<double>());
      }
    }
  }
  r.reject_unknown_keys();
  return s;
}

double draw(const LengthSpec& s, std::mt19937_64& rng) {
  double v = 1;
  switch (s.kind) {
    case LengthDistribution::kFixed:
      v = s.value;
      break;
    case LengthDistribution::kUniform:
      v = std::floor(std::uniform_real_distribution<double>(s.min, s.max + 1)(rng));
      break;
    case LengthDistribution::kLognormal: {
      // Mean of a lognormal is exp(mu + sigma^2/2).
      const double mu = std::log(s.mean) - 0.5 * s.sigma * s.sigma;
      v = std::round(std::lognormal_distribution<double>(mu, s.sigma)(rng));
      v = std::max(v, s.min);
      break;
    }
    case LengthDistribution::kEmpirical: {
      double total = 0;
      for (const auto& [tokens, w] : s.table) total += w;
      double u = std::uniform_real_distribution<double>(0, total)(rng);
      v = s.table.back().first;
      for (const auto& [tokens, w] : s.table) {
        if (u < w) {
          v = tokens;
          break;
        }
        u -= w;
      }
      break;
    }
  }
  if (s.max > 0) v = std::min(v, s.max);
  return std::max(1.0, v);
}

}  // namespace

namespace {

// "pairs": {"path": "x.csv", "first_row": 0}: a CSV with a header naming prompt_len and
// output_len; every row from first_row on, as many as the workload's count needs.
// Returns false when the pairs could not be read (the error is reported).
bool read_pairs(JsonObjectReader& r, const std::string& workload_file, bool inline_json, WorkloadSpec& w) {
  auto p = r.object("pairs", true);
  if (!p.is_object()) return false;
  std::string path = p.required_string("path").value_or("");
  const std::int64_t first = p.integer("first_row", 0, std::int64_t{1} << 40).value_or(0);
  p.reject_unknown_keys();
  if (path.empty()) return false;
  if (path.front() != '/' && !inline_json) {
    auto slash = workload_file.rfind('/');
    if (slash != std::string::npos) path = workload_file.substr(0, slash + 1) + path;
  }
  std::ifstream in(path);
  if (!in) {
    p.error("path", fmt::format("cannot read \"{}\"", path), "a CSV file with prompt_len and output_len columns");
    return false;
  }
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = line.find(',', start);
      cells.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    for (auto& c : cells) {
      while (!c.empty() && (c.back() == '\r' || c.back() == ' ')) c.pop_back();
    }
    return cells;
  };
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split(line);
  const auto column = [&](const char* name) -> std::ptrdiff_t {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : it - header.begin();
  };
  const std::ptrdiff_t prompt = column("prompt_len"), output = column("output_len");
  if (prompt < 0 || output < 0) {
    p.error("path", fmt::format("\"{}\" has no prompt_len and output_len columns in its header", path),
            "a header line such as index,prompt_len,output_len");
    return false;
  }
  std::int64_t row = 0, line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    if (row++ < first) continue;
    const std::vector<std::string> cells = split(line);
    const auto cell = [&](std::ptrdiff_t c) {
      if (static_cast<std::size_t>(c) >= cells.size()) return -1L;
      const std::string& text = cells[static_cast<std::size_t>(c)];
      char* end = nullptr;
      const long v = std::strtol(text.c_str(), &end, 10);
      return text.empty() || *end != '\0' ? -1L : v;
    };
    const long in_tokens = cell(prompt);
    const long out_tokens = cell(output);
    if (in_tokens < 1 || out_tokens < 1) {
      p.error("path", fmt::format("{} line {}: prompt_len and output_len must be integers >= 1", path, line_no),
              "one (prompt, output) pair per row");
      return false;
    }
    w.pairs.emplace_back(static_cast<std::int32_t>(in_tokens), static_cast<std::int32_t>(out_tokens));
  }
  w.pairs_source = path;
  if (w.pairs.empty()) {
    p.error("first_row", fmt::format("\"{}\" has no rows from row {}", path, first), "a smaller first_row");
    return false;
  }
  return true;
}

}  // namespace

WorkloadSpec load_workload_spec(const std::string& source, Diagnostics& diag) {
  JsonDocument doc = read_json_document(source, "--workload");
  WorkloadSpec w;
  w.source = doc.file;
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  r.allow({"description"});
  w.seed = static_cast<std::uint64_t>(r.integer("seed", 0, std::int64_t{1} << 62).value_or(1));
  if (r.has("trace")) {
    auto t = r.object("trace", true);
    TraceSpec ts;
    ts.path = t.required_string("path").value_or("");
    ts.format = t.required_choice("format", {"azure", "mooncake"}, "azure (CSV) or mooncake (JSONL)").value_or("azure");
    ts.time_scale = t.number("time_scale", 1e-9, 1e9).value_or(1);
    ts.length_scale = t.number("length_scale", 1e-9, 1e9).value_or(1);
    ts.max_requests = t.integer("max_requests", 0, std::int64_t{1} << 40).value_or(0);
    t.reject_unknown_keys();
    // A relative trace path is relative to the workload file.
    if (!ts.path.empty() && ts.path.front() != '/' && !looks_like_inline_json(source)) {
      auto slash = doc.file.rfind('/');
      if (slash != std::string::npos) ts.path = doc.file.substr(0, slash + 1) + ts.path;
    }
    w.trace = ts;
    for (const char* k : {"arrival", "input", "output", "count", "duration_s"}) {
      if (r.has(k)) r.error(k, "a trace replay takes its arrivals and lengths from the trace", "remove it");
    }
  } else {
    auto a = r.object("arrival", true);
    w.arrival = a.required_choice("process", {"poisson", "gamma"}, "poisson or gamma").value_or("poisson");
    w.rate_per_s = a.required_number("rate_per_s", 1e-9, 1e9, "requests per second").value_or(1);
    w.gamma_cv = a.number("cv", 1e-3, 100).value_or(1);
    if (w.arrival == "poisson" && a.has("cv")) a.error("cv", "only gamma arrivals take a cv", "set \"process\": \"gamma\"");
    a.reject_unknown_keys();
    w.count = r.integer("count", 1, std::int64_t{1} << 32).value_or(0);
    w.duration_s = r.number("duration_s", 1e-9, 1e9).value_or(0);
    if ((w.count > 0) == (w.duration_s > 0)) {
      r.error("count", "give exactly one of count and duration_s", "how many requests to draw");
    }
    if (r.has("pairs")) {
      if (!read_pairs(r, doc.file, looks_like_inline_json(source), w)) w.pairs.clear();
      for (const char* k : {"input", "output", "max_total_tokens"}) {
        if (r.raw(k) != nullptr) r.error(k, "the pairs give the lengths", "remove it, or remove pairs");
      }
    } else {
      auto in = r.object("input", true);
      if (in.is_object()) w.input = read_length(in);
      auto out = r.object("output", true);
      if (out.is_object()) w.output = read_length(out);
    }
    w.max_total_tokens = r.integer("max_total_tokens", 3, std::int64_t{1} << 40).value_or(0);
    if (w.max_total_tokens > 0 && !r.diagnostics().has_errors()) {
      // The filter must keep a useful share of pairs, or drawing would spin.
      std::mt19937_64 probe(w.seed);
      int kept = 0;
      for (int i = 0; i < 1000; ++i) kept += draw(w.input, probe) + draw(w.output, probe) < static_cast<double>(w.max_total_tokens);
      if (kept < 10) {
        r.error("max_total_tokens", fmt::format("keeps {} of 1000 drawn (input, output) pairs", kept),
                "raise it, or shorten the length distributions");
      }
    }
  }
  if (!w.pairs.empty()) {
    if (w.count > static_cast<std::int64_t>(w.pairs.size())) {
      r.error("count", fmt::format("{} requests, but the pairs file has {} rows from first_row", w.count, w.pairs.size()),
              "at most as many requests as rows");
    } else if (w.count == 0) {
      r.error("count", "a pairs workload needs count (duration_s could run out of rows)", "how many rows to replay");
    }
  }
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return w;
}

RequestSet generate_requests(const WorkloadSpec& spec, double rate_per_s) {
  RequestSet set;
  std::mt19937_64 arrivals(spec.seed);
  std::mt19937_64 lengths(spec.seed ^ 0x9e3779b97f4a7c15ULL);
  // Gamma inter-arrival: shape k = 1/cv^2, mean 1/rate.
  const double shape = spec.arrival == "gamma" ? 1.0 / (spec.gamma_cv * spec.gamma_cv) : 1.0;
  std::gamma_distribution<double> gap(shape, 1.0 / (rate_per_s * shape));
  double t = 0;
  if (spec.count > 0) set.requests.reserve(static_cast<std::size_t>(spec.count));
  for (std::int64_t i = 0; spec.count > 0 ? i < spec.count : true; ++i) {
    t += gap(arrivals);
    if (spec.count == 0 && t > spec.duration_s) break;
    ServeRequest r;
    r.arrival_s = t;
    if (!spec.pairs.empty()) {
      std::tie(r.input_tokens, r.output_tokens) = spec.pairs[static_cast<std::size_t>(i) % spec.pairs.size()];
      set.requests.push_back(r);
      continue;
    }
    do {
      r.input_tokens = static_cast<std::int32_t>(draw(spec.input, lengths));
      r.output_tokens = static_cast<std::int32_t>(draw(spec.output, lengths));
    } while (spec.max_total_tokens > 0 && r.input_tokens + r.output_tokens >= spec.max_total_tokens);
    set.requests.push_back(r);
  }
  return set;
}

double length_mean(const LengthSpec& spec) {
  std::mt19937_64 rng(12345);
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) sum += draw(spec, rng);
  return sum / n;
}

}  // namespace clustersim
