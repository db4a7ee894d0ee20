#include "traces/engine_throughput_table.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "models/inputs/input_error.hpp"

namespace clustersim {

namespace {

const std::vector<std::string> kColumns = {"engine", "engine_version", "model", "cluster", "tp", "attention_dp",
                                           "dtype", "isl", "osl", "num_requests", "kv_cache_fraction", "metric",
                                           "published", "source"};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

// Splits on commas; the last column (source) takes the rest of the line.
std::vector<std::string> split(const std::string& line, std::size_t columns) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (out.size() + 1 < columns) {
    const std::size_t comma = line.find(',', start);
    if (comma == std::string::npos) break;
    out.push_back(trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
  out.push_back(trim(line.substr(start)));
  return out;
}

}  // namespace

EngineThroughputTable read_engine_throughput_table(const std::string& text, const std::string& file) {
  EngineThroughputTable table;
  table.file = file;
  std::vector<InputError> errors;
  auto error = [&](int line, const std::string& message, const std::string& hint = "") {
    errors.push_back({file, fmt::format("line {}", line), message, hint});
  };
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  bool header_seen = false;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    if (!header_seen) {
      const std::vector<std::string> header = split(line, kColumns.size() + 1);
      if (header != kColumns) {
        error(line_no, "the header is not the engine-throughput columns", fmt::format("expected: {}", fmt::join(kColumns, ",")));
        break;
      }
      header_seen = true;
      continue;
    }
    const std::vector<std::string> cells = split(line, kColumns.size());
    if (cells.size() != kColumns.size()) {
      error(line_no, fmt::format("{} columns, expected {}", cells.size(), kColumns.size()));
      continue;
    }
    EngineThroughputRow row;
    row.line = line_no;
    const std::size_t before = errors.size();
    auto integer = [&](std::size_t c, std::int64_t min) {
      std::int64_t v = 0;
      const std::string& s = cells[c];
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size() || v < min) {
        error(line_no, fmt::format("column {}: \"{}\" is not an integer >= {}", kColumns[c], s, min));
      }
      return v;
    };
    auto number = [&](std::size_t c, double min, double max) {
      double v = 0;
      const std::string& s = cells[c];
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size() || !(v > min) || v > max) {
        error(line_no, fmt::format("column {}: \"{}\" is not a number in ({}, {}]", kColumns[c], s, min, max));
      }
      return v;
    };
    auto one_of = [&](std::size_t c, const std::vector<std::string>& valid) {
      for (const auto& v : valid) {
        if (cells[c] == v) return cells[c];
      }
      error(line_no, fmt::format("column {}: unknown value \"{}\"", kColumns[c], cells[c]),
            fmt::format("valid: {}", fmt::join(valid, ", ")));
      return std::string();
    };
    auto text_cell = [&](std::size_t c) {
      if (cells[c].empty()) error(line_no, fmt::format("column {} is empty", kColumns[c]));
      return cells[c];
    };
    row.engine = one_of(0, {"trtllm"});
    row.engine_version = text_cell(1);
    row.model = text_cell(2);
    row.cluster = text_cell(3);
    row.tp = integer(4, 1);
    row.attention_dp = one_of(5, {"0", "1"}) == "1";
    row.dtype = one_of(6, {"bf16", "fp16", "fp8"});
    row.isl = integer(7, 1);
    row.osl = integer(8, 1);
    row.num_requests = integer(9, 1);
    row.kv_cache_fraction = number(10, 0.0, 1.0);
    row.metric = one_of(11, {"output_tokens_per_s"});
    row.published = number(12, 0.0, 1e12);
    row.source = text_cell(13);
    if (errors.size() == before) table.rows.push_back(std::move(row));
  }
  if (!header_seen && errors.empty()) error(line_no, "no header row", fmt::format("expected: {}", fmt::join(kColumns, ",")));
  if (header_seen && errors.empty() && table.rows.empty()) error(line_no, "no rows after the header");
  if (!errors.empty()) throw InputErrors(std::move(errors));
  return table;
}

EngineThroughputTable load_engine_throughput_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputErrors({{path, "", "cannot read the file", ""}});
  std::ostringstream text;
  text << in.rdbuf();
  return read_engine_throughput_table(text.str(), path);
}

}  // namespace clustersim
