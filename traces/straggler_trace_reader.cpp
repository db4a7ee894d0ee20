#include "traces/straggler_trace_reader.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"

namespace clustersim::traces {

namespace {

enum Column : std::size_t {
  kDpRank, kStage, kRank, kStep, kOptype, kStartTs, kDuration, kSeqId, kMc, kMbId, kGmc,
  kColumnCount
};

constexpr std::array<std::string_view, kColumnCount> kColumnNames{
    "dp_rank", "stage", "rank", "step", "optype", "start_ts", "duration", "seq_id", "mc",
    "mb_id", "gmc"};

constexpr std::size_t kNotPresent = std::numeric_limits<std::size_t>::max();

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Splits at commas into `fields` (reused between rows: no allocation per row once warm).
void split_fields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t begin = 0;
  while (true) {
    std::size_t comma = line.find(',', begin);
    if (comma == std::string_view::npos) {
      fields.push_back(trim(line.substr(begin)));
      return;
    }
    fields.push_back(trim(line.substr(begin, comma - begin)));
    begin = comma + 1;
  }
}

std::string all_op_types() {
  std::string out;
  for (auto name : op_type_names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

class RowParser {
 public:
  RowParser(Diagnostics& diag, const std::string& file) : diag_(diag), file_(file) {}

  bool full() const { return diag_.errors().size() >= kMaxReportedTraceErrors; }

  void error(std::size_t line, std::string_view column, std::string message, std::string hint) {
    diag_.error(file_, fmt::format("line {}, column {}", line, column), std::move(message),
                std::move(hint));
  }

  template <typename Int>
  bool integer(std::string_view text, std::size_t line, Column column, std::int64_t min, Int& out) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const std::int64_t max = std::numeric_limits<Int>::max();
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      error(line, kColumnNames[column], fmt::format("\"{}\" is not an integer", text),
            fmt::format("a whole number from {} to {}", min, max));
      return false;
    }
    if (value < min || value > max) {
      error(line, kColumnNames[column], fmt::format("{} is out of range", value),
            fmt::format("a whole number from {} to {}", min, max));
      return false;
    }
    out = static_cast<Int>(value);
    return true;
  }

  // Seconds. The source format stores float32; values are kept as the float they denote.
  bool seconds(std::string_view text, std::size_t line, Column column, bool non_negative,
               double& out) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
        !std::isfinite(value)) {
      error(line, kColumnNames[column], fmt::format("\"{}\" is not a finite number", text),
            "seconds as a decimal number, e.g. 0.1386");
      return false;
    }
    if (non_negative && value < 0) {
      error(line, kColumnNames[column], fmt::format("negative duration {}", text),
            "a duration of 0 or more seconds");
      return false;
    }
    out = static_cast<double>(static_cast<float>(value));
    return true;
  }

  bool optype(std::string_view text, std::size_t line, StragglerOpType& out) {
    if (auto type = parse_op_type(text)) {
      out = *type;
      return true;
    }
    std::vector<std::string> names(op_type_names().begin(), op_type_names().end());
    auto near = closest_match(text, names);
    error(line, "optype", fmt::format("unknown optype \"{}\"", text),
          near ? fmt::format("did you mean \"{}\"? valid: {}", *near, all_op_types())
               : fmt::format("one of {}", all_op_types()));
    return false;
  }

 private:
  Diagnostics& diag_;
  const std::string& file_;
};

std::string read_maybe_gzipped(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) throw_input_error(path, "", "cannot open file", "check the path");
  gzbuffer(in, 1 << 18);
  std::string text;
  std::vector<char> buffer(1 << 20);
  while (true) {
    int n = gzread(in, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n < 0) {
      int code = 0;
      std::string why = gzerror(in, &code);
      gzclose(in);
      throw_input_error(path, "", fmt::format("cannot read: {}", why),
                        "a CSV file, optionally gzip-compressed (.csv.gz)");
    }
    if (n == 0) break;
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  gzclose(in);
  return text;
}

}  // namespace

StragglerTrace read_straggler_trace(const std::string& path) {
  return parse_straggler_trace(read_maybe_gzipped(path), path);
}

StragglerTrace parse_straggler_trace(std::string_view text, const std::string& file) {
  Diagnostics diag;
  StragglerTrace trace;
  trace.file = file;
  RowParser parse(diag, file);
  std::vector<std::string_view> fields;
  std::array<std::size_t, kColumnCount> where{};
  where.fill(kNotPresent);
  std::size_t header_fields = 0;
  std::size_t line_number = 0;
  std::size_t pos = 0;
  bool have_header = false;
  trace.ops.reserve(text.size() / 48);
  while (pos < text.size() && !parse.full()) {
    std::size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) newline = text.size();
    std::string_view line = text.substr(pos, newline - pos);
    pos = newline + 1;
    ++line_number;
    if (trim(line).empty()) continue;
    split_fields(line, fields);
    if (!have_header) {
      have_header = true;
      header_fields = fields.size();
      for (std::size_t i = 0; i < fields.size(); ++i) {
        for (std::size_t c = 0; c < kColumnCount; ++c) {
          if (fields[i] != kColumnNames[c]) continue;
          if (where[c] != kNotPresent) {
            parse.error(line_number, kColumnNames[c], "column appears twice in the header", "");
          }
          where[c] = i;
        }
      }
      for (std::size_t c = 0; c < kColumnCount; ++c) {
        if (where[c] != kNotPresent) continue;
        parse.error(line_number, kColumnNames[c], "missing column in the header",
                    "the header must name dp_rank, stage, rank, step, optype, start_ts, duration, "
                    "seq_id, mc, mb_id, gmc (any order)");
      }
      if (diag.has_errors()) break;
      continue;
    }
    if (fields.size() != header_fields) {
      parse.error(line_number, "*",
                  fmt::format("row has {} fields, the header has {}", fields.size(), header_fields),
                  "one comma-separated value per header column");
      continue;
    }
    StragglerOp op;
    op.line = static_cast<std::int32_t>(line_number);
    bool ok = parse.integer(fields[where[kDpRank]], line_number, kDpRank, 0, op.dp_rank);
    ok &= parse.integer(fields[where[kStage]], line_number, kStage, 0, op.stage);
    ok &= parse.integer(fields[where[kRank]], line_number, kRank, 0, op.rank);
    ok &= parse.integer(fields[where[kStep]], line_number, kStep, 0, op.step);
    ok &= parse.optype(fields[where[kOptype]], line_number, op.optype);
    ok &= parse.seconds(fields[where[kStartTs]], line_number, kStartTs, false, op.start_s);
    ok &= parse.seconds(fields[where[kDuration]], line_number, kDuration, true, op.duration_s);
    ok &= parse.integer(fields[where[kSeqId]], line_number, kSeqId, 0, op.seq_id);
    ok &= parse.integer(fields[where[kMc]], line_number, kMc, -1, op.mc);
    ok &= parse.integer(fields[where[kMbId]], line_number, kMbId, -1, op.mb_id);
    ok &= parse.integer(fields[where[kGmc]], line_number, kGmc, -1, op.gmc);
    if (ok) trace.ops.push_back(op);
  }
  if (!have_header) {
    diag.error(file, "line 1", "empty trace: no header and no rows",
               "a CSV header line followed by one row per op");
  } else if (!diag.has_errors() && trace.ops.empty()) {
    diag.error(file, "line 2", "the trace has a header but no rows", "one row per op");
  }
  if (parse.full() && pos < text.size()) {
    diag.error(file, "", fmt::format("stopped after {} errors", kMaxReportedTraceErrors),
               "fix these and run again");
  }
  diag.throw_if_errors();
  return trace;
}

}  // namespace clustersim::traces
