#include "traces/nccl_tests_log_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <vector>

#include "models/inputs/input_error.hpp"
#include "traces/measurement_input.hpp"
#include "traces/nccl_tests_common.hpp"

namespace clustersim {

namespace {

struct Token {
  std::string_view text;
  std::size_t end = 0;  // one past the last character, in the prefix-stripped line
};

std::vector<Token> tokenize(std::string_view line) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back({line.substr(start, i - start), i});
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Open MPI --tag-output "[1,0]<stdout>:" and "[0] " style rank prefixes.
std::string_view strip_mpi_prefix(std::string_view line) {
  if (line.empty() || line.front() != '[') return line;
  auto close = line.find(']');
  if (close == std::string_view::npos || close == 1) return line;
  std::string_view inside = line.substr(1, close - 1);
  if (!std::all_of(inside.begin(), inside.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == ',';
      })) {
    return line;
  }
  line.remove_prefix(close + 1);
  for (std::string_view stream : {"<stdout>", "<stderr>"}) {
    if (line.starts_with(stream)) line.remove_prefix(stream.size());
  }
  if (line.starts_with(":")) line.remove_prefix(1);
  if (line.starts_with(" ")) line.remove_prefix(1);
  return line;
}

struct Number {
  double value = 0;
  double resolution = 0;  // one unit of the last printed digit
};

std::optional<Number> parse_number(std::string_view s) {
  Number n;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(first, last, n.value);
  if (ec != std::errc() || ptr != last || !std::isfinite(n.value)) return std::nullopt;
  auto e = s.find_first_of("eE");
  std::string_view mantissa = s.substr(0, e);
  auto dot = mantissa.find('.');
  int decimals = dot == std::string_view::npos ? 0 : static_cast<int>(mantissa.size() - dot - 1);
  int exponent = 0;
  if (e != std::string_view::npos) {
    std::string_view exp = s.substr(e + 1);
    if (exp.starts_with("+")) exp.remove_prefix(1);
    std::from_chars(exp.data(), exp.data() + exp.size(), exponent);
  }
  n.resolution = std::pow(10.0, exponent - decimals);
  return n;
}

std::optional<long> parse_integer(std::string_view s) {
  long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr int kShared = -1;
constexpr int kOutOfPlace = 0;
constexpr int kInPlace = 1;
constexpr std::string_view kHalfNames[] = {"out-of-place", "in-place"};

constexpr std::string_view kSharedColumns[] = {"size", "count", "type", "redop", "root",
                                               "timestamp"};
constexpr std::string_view kHalfColumns[] = {"time",  "cputime", "algbw", "busbw", "#wrong",
                                             "error", "i_min",   "i_max", "i_p99", "i_cv%"};

std::string known_columns() {
  std::string out;
  for (auto c : kSharedColumns) out += fmt::format("{}{}", out.empty() ? "" : " ", c);
  for (auto c : kHalfColumns) out += fmt::format(" {}", c);
  return out;
}

struct Column {
  std::string name;  // "cputime" is stored as "time"
  int half = kShared;
  std::size_t end = 0;
};

struct Table {
  int line = 0;
  std::vector<Column> columns;
  std::size_t shared_count = 0;  // columns before the first half
  std::size_t half_count = 0;    // columns in each half
  bool timestamp = false;        // a trailing free-text column

  std::optional<std::size_t> index(std::string_view name, int half) const {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].name == name && columns[i].half == half) return i;
    }
    return std::nullopt;
  }
};

struct HalfValues {
  bool present = false;
  int time_index = 0;  // token index, for messages
  Number time_us, algbw, busbw;
};

struct Row {
  int line = 0;
  double size_bytes = 0;
  std::string dtype = "unknown";
  HalfValues half[2];
};

struct Run {
  std::optional<CollectiveKind> kind;
  std::string binary;  // as named in the log
  std::optional<long> nthreads, ngpus, warmup, iterations;
  std::optional<int> launcher_processes;
  std::map<int, std::string> hosts;  // rank -> host
  std::string gpu;
  std::optional<Table> table;
  std::vector<Row> rows;
};

class LogParser {
 public:
  LogParser(const std::string& file, const NcclTestsLogHints& hints) : file_(file), hints_(hints) {}

  void read(const std::string& text);
  RecordSet finish();

 private:
  void error(int line, std::string message, std::string hint = {}) {
    diag_.error(file_, fmt::format("line {}", line), std::move(message), std::move(hint));
  }
  Run& run() {
    if (runs_.empty()) start_run();
    return runs_.back();
  }
  void start_run() {
    Run next;
    next.kind = last_binary_kind_;
    next.binary = last_binary_;
    next.launcher_processes = launcher_processes_;
    runs_.push_back(std::move(next));
  }
  void parse_line(int number, std::string_view line);
  void parse_comment(int number, std::string_view body, const std::vector<Token>& tokens);
  void parse_free_text(const std::vector<Token>& tokens, std::string_view line);
  void parse_header(int number, const std::vector<Token>& tokens);
  void parse_row(int number, const std::vector<Token>& tokens);
  void note_binary(std::string_view token);
  void finish_run(Run& r, std::size_t index, std::size_t count, RecordSet& out);
  std::optional<int> ranks_of(const Run& r) const;

  std::string file_;
  NcclTestsLogHints hints_;
  Diagnostics diag_;
  std::vector<Run> runs_;
  std::map<std::string, std::string> env_;
  std::string nccl_version_, tool_version_;
  std::optional<CollectiveKind> last_binary_kind_;
  std::string last_binary_;
  std::optional<int> launcher_processes_;
  bool in_place_first_ = false;  // from the last "out-of-place / in-place" title row
};

void LogParser::read(const std::string& text) {
  int number = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    parse_line(number, strip_mpi_prefix(line));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
}

void LogParser::note_binary(std::string_view token) {
  last_binary_ = std::string(token.substr(token.find_last_of('/') + 1));
  last_binary_kind_ = collective_from_nccl_tests_binary(token);
  // A binary named after the table started belongs to the next run.
  if (!runs_.empty() && !runs_.back().table) {
    runs_.back().kind = last_binary_kind_;
    runs_.back().binary = last_binary_;
  }
}

void LogParser::parse_line(int number, std::string_view line) {
  auto tokens = tokenize(line);
  if (tokens.empty()) return;
  std::string_view first = tokens[0].text;
  if (first.starts_with("#")) {
    std::string_view body = line.substr(line.find('#') + 1);
    auto body_tokens = tokenize(body);
    parse_comment(number, body, body_tokens);
    return;
  }
  if (all_digits(first) && !runs_.empty() && runs_.back().table) {
    parse_row(number, tokens);
    return;
  }
  // Pastes sometimes lose the leading '#' of the header rows.
  if (first == "size" || first == "(B)" || first == "Rank" || first == "nThread" ||
      first == "out-of-place" || first == "in-place") {
    parse_comment(number, line, tokens);
    return;
  }
  parse_free_text(tokens, line);
}

void LogParser::parse_free_text(const std::vector<Token>& tokens, std::string_view line) {
  bool nccl_log = line.find("NCCL INFO") != std::string_view::npos ||
                  line.find("NCCL WARN") != std::string_view::npos;
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i].text == "version" && i > 0 && tokens[i - 1].text == "NCCL") {
      std::string_view v = tokens[i + 1].text;
      nccl_version_ = std::string(v.substr(0, v.find('+')));
    }
  }
  if (nccl_log) {
    // "... NCCL INFO NCCL_ALGO set by environment to Ring"
    for (std::size_t i = 0; i + 4 < tokens.size(); ++i) {
      if (tokens[i + 1].text == "set" && tokens[i + 2].text == "by" &&
          tokens[i + 3].text == "environment" && tokens[i + 4].text == "to" && i + 5 < tokens.size()) {
        collect_nccl_env(fmt::format("{}={}", tokens[i].text, tokens[i + 5].text), env_);
      }
    }
    return;
  }
  bool launcher = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string_view t = tokens[i].text;
    if (collect_nccl_env(t, env_)) continue;
    std::string_view base = t.substr(t.find_last_of('/') + 1);
    if (base == "mpirun" || base == "mpiexec" || base == "srun" || base == "orterun") launcher = true;
    if (looks_like_nccl_tests_binary(t)) {
      note_binary(t);
      launcher = false;  // later flags ("-n 20") belong to nccl-tests
      continue;
    }
    if (launcher && i + 1 < tokens.size() &&
        (t == "-np" || t == "-n" || t == "--np" || t == "--ntasks")) {
      if (auto n = parse_integer(tokens[i + 1].text); n && *n > 0 && *n < (1 << 24)) {
        launcher_processes_ = static_cast<int>(*n);
        if (!runs_.empty() && !runs_.back().table) runs_.back().launcher_processes = launcher_processes_;
      }
    }
  }
}

void LogParser::parse_comment(int number, std::string_view body, const std::vector<Token>& tokens) {
  if (tokens.empty()) return;
  std::string_view first = tokens[0].text;
  if (first == "nccl-tests" && tokens.size() > 2 && tokens[1].text == "version") {
    tool_version_ = std::string(tokens[2].text);
    for (const auto& t : tokens) {
      if (t.text.starts_with("nccl-library=")) {
        if (auto code = parse_integer(t.text.substr(13))) nccl_version_ = nccl_version_from_code(*code);
      }
    }
    return;
  }
  if (first == "Collective" && tokens.size() > 3 && tokens[2].text == "starting:") {
    note_binary(tokens[3].text);
    return;
  }
  if (first == "nThread") {
    start_run();
    Run& r = runs_.back();
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      std::string_view t = tokens[i].text;
      auto next = parse_integer(tokens[i + 1].text);
      if (t == "nThread") r.nthreads = next;
      if (t == "nGpus") r.ngpus = next;
      if (t == "iters:") {
        std::string_view before = i > 0 ? tokens[i - 1].text : "";
        if (before == "warmup") r.warmup = next;
        else if (before != "agg") r.iterations = next;
      }
    }
    return;
  }
  if (first == "Rank" && tokens.size() > 1) {
    auto rank = parse_integer(tokens[1].text);
    if (!rank || *rank < 0 || *rank >= (1 << 24)) return;
    Run& r = run();
    for (std::size_t i = 2; i + 1 < tokens.size(); ++i) {
      if (tokens[i].text == "on") r.hosts[static_cast<int>(*rank)] = std::string(tokens[i + 1].text);
      if (tokens[i].text.starts_with("[") && tokens[i].text.ends_with("]") && i > 0 &&
          tokens[i - 2].text == "device" && r.gpu.empty()) {
        std::string_view name = body.substr(tokens[i].end);
        auto start = name.find_first_not_of(" \t");
        auto end = name.find_last_not_of(" \t");
        if (start != std::string_view::npos) r.gpu = std::string(name.substr(start, end - start + 1));
      }
    }
    return;
  }
  if (first == "out-of-place" || first == "in-place") {
    in_place_first_ = first == "in-place";
    return;
  }
  if (first == "size") {
    parse_header(number, tokens);
    return;
  }
  // Command lines pasted as comments ("# NCCL_ALGO=Tree ./all_reduce_perf") still count.
  if (first != "(B)" && first != "Using" && first != "Out" && first != "Avg") {
    parse_free_text(tokens, body);
  }
}

void LogParser::parse_header(int number, const std::vector<Token>& tokens) {
  Table table;
  table.line = number;
  int half = kShared;
  std::set<std::string> seen_in_half;
  bool bad = false;
  for (const auto& t : tokens) {
    std::string name(t.text == "cputime" ? "time" : t.text);
    bool shared = std::find(std::begin(kSharedColumns), std::end(kSharedColumns), t.text) !=
                  std::end(kSharedColumns);
    bool per_half = std::find(std::begin(kHalfColumns), std::end(kHalfColumns), t.text) !=
                    std::end(kHalfColumns);
    if (!shared && !per_half) {
      error(number, fmt::format("unknown column \"{}\" in the nccl-tests header", t.text),
            fmt::format("known columns: {}", known_columns()));
      bad = true;
      continue;
    }
    if (name == "timestamp") {
      table.timestamp = true;
      continue;  // free text, always last
    }
    if (per_half) {
      if (half == kShared || seen_in_half.count(name)) {
        half = half == kShared ? 0 : half + 1;
        seen_in_half.clear();
      }
      seen_in_half.insert(name);
    } else if (half != kShared) {
      error(number, fmt::format("column \"{}\" comes after the timings", t.text),
            "nccl-tests prints size, count, type, redop, root first");
      bad = true;
    }
    table.columns.push_back({name, per_half ? half : kShared, t.end});
  }
  if (bad) return;
  // Halves are numbered in table order; map them to out-of-place / in-place.
  int halves = half + 1;
  for (auto& c : table.columns) {
    if (c.half != kShared && in_place_first_) c.half = 1 - c.half;
    if (c.half == kShared) ++table.shared_count;
  }
  table.half_count = halves > 0 ? (table.columns.size() - table.shared_count) / halves : 0;
  std::string missing;
  if (!table.index("size", kShared)) missing += " size";
  for (int h = 0; h < 2 && halves == 2; ++h) {
    for (std::string_view need : {"time", "algbw", "busbw"}) {
      if (!table.index(need, h)) missing += fmt::format(" {} ({})", need, kHalfNames[h]);
    }
  }
  if (halves != 2 || !missing.empty() ||
      table.columns.size() != table.shared_count + 2 * table.half_count) {
    error(number,
          fmt::format("unknown nccl-tests column layout{}", missing.empty() ? "" : ": missing" + missing),
          "expected size, count, type, [redop], [root], then time, algbw, busbw, #wrong (or error) "
          "for out-of-place and again for in-place");
    return;
  }
  Run& r = run();
  if (r.table && !r.rows.empty()) {
    Run next = r;  // a second table of the same run: same system
    next.rows.clear();
    runs_.push_back(std::move(next));
  }
  runs_.back().table = std::move(table);
  in_place_first_ = false;
}

void LogParser::parse_row(int number, const std::vector<Token>& tokens) {
  Run& r = runs_.back();
  const Table& t = *r.table;
  std::size_t n = tokens.size();
  std::size_t full = t.columns.size();
  std::vector<int> halves;  // halves present, in table order
  if (n == full || (t.timestamp && n > full)) {
    halves = {t.columns[t.shared_count].half, 1 - t.columns[t.shared_count].half};
  } else if (n == t.shared_count + t.half_count) {
    // One half left blank (in-place only, or mscclpp-test's empty in-place): the values sit
    // under the header of the half they belong to.
    std::size_t end = tokens[t.shared_count].end;
    const Column& a = t.columns[t.shared_count];
    const Column& b = t.columns[t.shared_count + t.half_count];
    auto distance = [&](const Column& c) { return c.end > end ? c.end - end : end - c.end; };
    halves = {distance(a) <= distance(b) ? a.half : b.half};
  } else {
    error(number,
          fmt::format("row has {} values, the header on line {} names {} columns", n, t.line, full),
          "a truncated or wrapped line? every row holds size, count, type, ... and the timings "
          "of both halves");
    return;
  }
  Row row;
  row.line = number;
  auto size = parse_number(tokens[0].text);
  if (!size || size->value < 0) {
    error(number, fmt::format("column \"size\": expected bytes, got \"{}\"", tokens[0].text));
    return;
  }
  row.size_bytes = size->value;
  if (auto type = t.index("type", kShared)) row.dtype = normalize_nccl_tests_dtype(tokens[*type].text);
  bool ok = true;
  for (std::size_t k = 0; k < halves.size(); ++k) {
    int h = halves[k];
    // Token index of a column of half h: shared columns, then the halves in table order.
    auto token_of = [&](std::string_view name) {
      std::size_t col = *t.index(name, h);
      std::size_t offset = col - t.shared_count;
      std::size_t within = offset % t.half_count;
      return t.shared_count + k * t.half_count + within;
    };
    HalfValues& v = row.half[h];
    std::size_t ti = token_of("time");
    if (tokens[ti].text == "N/A" || tokens[ti].text == "nan") continue;
    for (std::string_view name : {"time", "algbw", "busbw"}) {
      std::size_t i = token_of(name);
      auto value = parse_number(tokens[i].text);
      bool valid = value && value->value >= 0 && (name != "time" || value->value > 0);
      if (!valid) {
        error(number,
              fmt::format("column \"{}\" ({}): expected {}, got \"{}\"", name, kHalfNames[h],
                          name == "time" ? "a time in microseconds > 0" : "a bandwidth in GB/s",
                          tokens[i].text),
              "numbers as nccl-tests prints them; a time of N/A skips that half");
        ok = false;
        continue;
      }
      (name == "time" ? v.time_us : name == "algbw" ? v.algbw : v.busbw) = *value;
    }
    v.present = true;
  }
  if (ok && row.size_bytes > 0) r.rows.push_back(std::move(row));
}

std::optional<int> LogParser::ranks_of(const Run& r) const {
  if (!r.hosts.empty()) return r.hosts.rbegin()->first + 1;
  if (r.launcher_processes && r.nthreads && r.ngpus) {
    return static_cast<int>(*r.launcher_processes * *r.nthreads * *r.ngpus);
  }
  return hints_.ranks;
}

void LogParser::finish_run(Run& r, std::size_t index, std::size_t count, RecordSet& out) {
  const int line = r.table->line;
  std::optional<CollectiveKind> kind = r.kind;
  if (!kind && !r.binary.empty()) {
    error(line, fmt::format("nccl-tests binary \"{}\" has no collective record type", r.binary),
          "supported: all_reduce, all_gather, reduce_scatter, alltoall, broadcast, reduce, "
          "sendrecv");
    return;
  }
  if (!kind) kind = hints_.collective;
  if (!kind) {
    error(line, "cannot tell which collective this table measures", nccl_tests_binary_hint());
    return;
  }
  auto ranks = ranks_of(r);
  if (!ranks || *ranks < 1) {
    error(line, "cannot tell how many ranks ran this test",
          "keep the \"#  Rank  0 Group  0 Pid ... on <host> device ...\" lines of the log (or the "
          "launcher's -np with the \"# nThread\" line)");
    return;
  }
  std::set<std::string> hosts;
  for (const auto& [rank, host] : r.hosts) hosts.insert(host);
  int nodes = hosts.empty() ? 1 : static_cast<int>(hosts.size());
  bool complete_ranks = !r.hosts.empty() && static_cast<int>(r.hosts.size()) == *ranks;

  RecordSource s;
  s.id = count > 1 ? fmt::format("{}-{}", source_id_from_path(file_), index + 1)
                   : source_id_from_path(file_);
  s.kind = "nccl-tests";
  std::string binary = r.binary.empty() ? fmt::format("{}_perf", to_string(*kind)) : r.binary;
  s.tool = tool_version_.empty() ? fmt::format("nccl-tests {}", binary)
                                 : fmt::format("nccl-tests {} {}", binary, tool_version_);
  s.file = file_name_of(file_);
  s.gpu = r.gpu.empty() ? "unknown" : r.gpu;
  s.nccl = nccl_version_;
  s.env = env_;
  if (complete_ranks) {
    s.nodes = nodes;
    if (*ranks % nodes == 0) s.gpus_per_node = *ranks / nodes;
  }
  s.timer = "host_wall";
  s.l2 = "none";
  s.statistic = "mean";
  if (r.warmup && *r.warmup >= 0) s.warmup_iterations = *r.warmup;
  if (r.iterations && *r.iterations > 0) s.iterations = *r.iterations;

  bool all_ok = true;
  for (const Row& row : r.rows) {
    for (int h : {kOutOfPlace, kInPlace}) {
      const HalfValues& v = row.half[h];
      if (!v.present) continue;
      for (bool bus : {false, true}) {
        const Number& printed = bus ? v.busbw : v.algbw;
        PrintedBandwidth p{row.size_bytes, v.time_us.value, v.time_us.resolution, printed.value,
                           printed.resolution};
        if (auto mismatch = bandwidth_mismatch(*kind, *ranks, bus, p)) {
          error(row.line, fmt::format("column \"{}\" ({}): {}", bus ? "busbw" : "algbw",
                                      kHalfNames[h], *mismatch),
                bandwidth_mismatch_hint());
          all_ok = false;
        }
      }
      CollectiveRecord c;
      c.kind = *kind;
      c.ranks = *ranks;
      c.nodes = std::min(nodes, *ranks);
      c.size_bytes = row.size_bytes;
      c.dtype = row.dtype;
      c.in_place = h == kInPlace;
      apply_pinned_nccl_env(env_, c);
      MeasurementRecord rec;
      rec.source = s.id;
      rec.label = fmt::format("line {} {}", row.line, kHalfNames[h]);
      rec.shape = c;
      rec.samples_s = {v.time_us.value * 1e-6};
      out.records.push_back(std::move(rec));
    }
  }
  if (all_ok) out.sources.push_back(std::move(s));
}

RecordSet LogParser::finish() {
  RecordSet out;
  std::vector<Run*> with_rows;
  for (auto& r : runs_) {
    if (r.table && !r.rows.empty()) with_rows.push_back(&r);
  }
  for (std::size_t i = 0; i < with_rows.size(); ++i) finish_run(*with_rows[i], i, with_rows.size(), out);
  if (with_rows.empty() && !diag_.has_errors()) {
    diag_.error(file_, "", "no nccl-tests result rows found",
                "nccl-tests stdout has a header row (size count type ... busbw ...) followed by "
                "one row of numbers per message size");
  }
  diag_.throw_if_errors();
  return out;
}

}  // namespace

RecordSet read_nccl_tests_log(const std::string& text, const std::string& file,
                              const NcclTestsLogHints& hints) {
  LogParser parser(file, hints);
  parser.read(text);
  return parser.finish();
}

bool looks_like_nccl_tests_log(const std::string& text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    line = strip_mpi_prefix(line);
    auto tokens = tokenize(line);
    bool has_nthread = false, has_ngpus = false, has_size = false, has_busbw = false;
    for (const auto& t : tokens) {
      has_nthread = has_nthread || t.text == "nThread";
      has_ngpus = has_ngpus || t.text == "nGpus";
      has_size = has_size || t.text == "size";
      has_busbw = has_busbw || t.text == "busbw";
    }
    if ((has_nthread && has_ngpus) || (has_size && has_busbw)) return true;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return false;
}

}  // namespace clustersim
