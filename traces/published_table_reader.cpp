#include "traces/published_table_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "models/cost/cost_forms.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "traces/measurement_input.hpp"

namespace clustersim {

namespace {

constexpr double kGB = 1e9;
constexpr double kTera = 1e12;
constexpr double kUs = 1e-6;

enum class Family { kCollective, kGemm, kAttention, kMoe, kOverlap, kMemory, kServeIteration };

struct FamilyColumns {
  Family family;
  std::vector<std::string_view> required;
  std::vector<std::string_view> optional;
  std::vector<std::string_view> throughput;  // exactly one of these
};

const std::vector<FamilyColumns>& families() {
  static const std::vector<FamilyColumns> kFamilies = {
      {Family::kCollective, {"op", "ranks", "size_bytes"},
       {"nodes", "dtype", "algorithm", "protocol", "in_place"},
       {"busbw_GBps", "algbw_GBps", "time_us"}},
      {Family::kGemm, {"op", "m", "n", "k", "dtype"},
       {"batch", "implementation", "tile_m", "tile_n", "split_k", "ctas"}, {"tflops", "time_us"}},
      {Family::kAttention, {"op", "pass", "batch", "heads", "seq_q", "head_dim", "causal", "dtype"},
       {"kv_heads", "seq_kv", "implementation"}, {"tflops", "time_us"}},
      {Family::kMoe, {"op", "ranks", "bytes_per_rank"}, {"nodes", "imbalance", "implementation"},
       {"time_us", "GBps"}},
      {Family::kOverlap,
       {"op", "variant", "m", "n", "k", "ranks", "gemm_alone_us", "comm_alone_us",
        "sequential_us", "overlapped_us"},
       {},
       {}},
      {Family::kMemory, {"op", "bytes"}, {"kernel"}, {"GBps", "TBps", "time_us"}},
      {Family::kServeIteration, {"op", "model", "tensor_parallel_size", "phase", "batch", "input_len", "dtype"},
       {"implementation"}, {"time_us", "time_ms"}},
  };
  return kFamilies;
}

std::optional<Family> family_of(std::string_view op) {
  if (collective_kind_from_string(op)) return Family::kCollective;
  if (op == "gemm") return Family::kGemm;
  if (op == "attention") return Family::kAttention;
  if (op == "moe_dispatch" || op == "moe_combine") return Family::kMoe;
  if (op == "ag_gemm" || op == "gemm_rs") return Family::kOverlap;
  if (op == "memory") return Family::kMemory;
  if (op == "serve_iteration") return Family::kServeIteration;
  return std::nullopt;
}

std::string join(const std::vector<std::string_view>& names, std::string_view sep = ", ") {
  std::string out;
  for (auto n : names) out += fmt::format("{}{}", out.empty() ? "" : std::string(sep), n);
  return out;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Splits a CSV line; fields may be double-quoted ("a, b"), with "" for a quote.
std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(trim(field));
      field.clear();
    } else {
      field += c;
    }
  }
  out.push_back(trim(field));
  return out;
}

const std::vector<std::string_view> kSourceKeys = {
    "source_id", "kind",      "url",        "gpu",          "tool",    "statistic",
    "timer",     "nodes",     "gpus_per_node", "interconnect", "date", "nccl",
    "cuda",      "driver",    "sm_count",   "l2",           "warmup_iterations", "iterations"};

class TableReader {
 public:
  TableReader(const std::string& file) : file_(file) {}
  RecordSet read(const std::string& text);

 private:
  struct Row {
    int line;
    const std::vector<std::string>* header;
    std::vector<std::string> values;
    const std::string* get(std::string_view column) const {
      for (std::size_t i = 0; i < header->size(); ++i) {
        if ((*header)[i] == column) return values[i].empty() ? nullptr : &values[i];
      }
      return nullptr;
    }
  };

  void error(int line, std::string message, std::string hint = {}) {
    diag_.error(file_, fmt::format("line {}", line), std::move(message), std::move(hint));
  }
  void source_key(int line, std::string_view body);
  void finish_source(int line);
  void check_header(int line, const std::vector<std::string>& header);
  void row(const Row& r);

  std::optional<double> positive(const Row& r, std::string_view column, bool required = true);
  std::optional<std::int64_t> integer(const Row& r, std::string_view column, std::int64_t min,
                                      bool required = true);
  std::optional<bool> boolean(const Row& r, std::string_view column);
  std::optional<Dtype> dtype(const Row& r);
  // The one throughput column the row fills, by name, with its value.
  std::optional<std::pair<std::string_view, double>> throughput(const Row& r, Family family);

  std::string file_;
  Diagnostics diag_;
  std::map<std::string, std::pair<int, std::string>, std::less<>> keys_;  // key -> line, value
  RecordSource source_;
  RecordSet out_;
  std::optional<Family> table_family_;
  int table_line_ = 0;
};

void TableReader::source_key(int line, std::string_view body) {
  auto colon = body.find(':');
  std::string key = trim(body.substr(0, colon));
  if (colon == std::string_view::npos) {
    error(line, fmt::format("expected \"# key: value\", got \"# {}\"", trim(body)),
          fmt::format("source keys: {}", join(kSourceKeys)));
    return;
  }
  if (std::find(kSourceKeys.begin(), kSourceKeys.end(), key) == kSourceKeys.end()) {
    std::vector<std::string> known(kSourceKeys.begin(), kSourceKeys.end());
    auto near = closest_match(key, known);
    error(line, fmt::format("unknown source key \"{}\"", key),
          near ? fmt::format("did you mean \"{}\"?", *near) : fmt::format("source keys: {}", join(kSourceKeys)));
    return;
  }
  if (keys_.count(key)) error(line, fmt::format("source key \"{}\" is given twice", key));
  keys_[key] = {line, trim(body.substr(colon + 1))};
}

void TableReader::finish_source(int line) {
  auto value = [&](std::string_view k) -> const std::string* {
    auto it = keys_.find(k);
    return it == keys_.end() ? nullptr : &it->second.second;
  };
  auto key_line = [&](std::string_view k) { return keys_.count(k) ? keys_.find(k)->second.first : line; };
  auto choice = [&](std::string_view k, std::initializer_list<std::string_view> allowed,
                    std::string fallback) -> std::string {
    const std::string* v = value(k);
    if (!v) return fallback;
    if (std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return *v;
    std::string names;
    for (auto a : allowed) names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", a);
    error(key_line(k), fmt::format("{}: unknown value \"{}\"", k, *v), names);
    return fallback;
  };
  auto count = [&](std::string_view k) -> std::optional<std::int64_t> {
    const std::string* v = value(k);
    if (!v) return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < 0) {
      error(key_line(k), fmt::format("{}: expected a whole number, got \"{}\"", k, *v));
      return std::nullopt;
    }
    return n;
  };
  for (std::string_view required : {"source_id", "gpu", "statistic"}) {
    if (!value(required) || value(required)->empty()) {
      error(line, fmt::format("source key \"{}\" is required before the first table", required),
            "e.g. \"# source_id: azure-nd-h100-v5\", \"# gpu: NVIDIA H100 80GB HBM3\", "
            "\"# statistic: mean\"");
    }
  }
  RecordSource& s = source_;
  s.id = value("source_id") ? *value("source_id") : "";
  s.kind = choice("kind", {"literature", "harness", "nccl-tests", "kineto"}, "literature");
  s.timer = choice("timer", {"published", "cuda_event", "cupti", "host_wall", "unknown"}, "published");
  s.statistic = choice("statistic", {"sample", "mean", "median", "min", "max"}, "mean");
  s.l2 = choice("l2", {"flush", "rotate", "none", "unknown"}, "unknown");
  for (auto [k, field] : {std::pair{"url", &s.url}, {"gpu", &s.gpu}, {"tool", &s.tool},
                          {"interconnect", &s.interconnect}, {"date", &s.date}, {"nccl", &s.nccl},
                          {"cuda", &s.cuda}, {"driver", &s.driver}}) {
    if (const std::string* v = value(k)) *field = *v;
  }
  s.file = file_name_of(file_);
  s.nodes = count("nodes");
  s.gpus_per_node = count("gpus_per_node");
  s.sm_count = count("sm_count");
  s.warmup_iterations = count("warmup_iterations");
  s.iterations = count("iterations");
}

void TableReader::check_header(int line, const std::vector<std::string>& header) {
  std::set<std::string> seen;
  std::vector<std::string> known;
  for (const auto& f : families()) {
    for (const auto* list : {&f.required, &f.optional, &f.throughput}) {
      for (auto c : *list) known.emplace_back(c);
    }
  }
  for (const auto& column : header) {
    if (!seen.insert(column).second) error(line, fmt::format("column \"{}\" appears twice", column));
    if (std::find(known.begin(), known.end(), column) == known.end()) {
      auto near = closest_match(column, known);
      error(line, fmt::format("unknown column \"{}\"", column),
            near ? fmt::format("did you mean \"{}\"?", *near) : "see docs/profiles.md, \"Published tables\"");
    }
  }
}

std::optional<double> TableReader::positive(const Row& r, std::string_view column, bool required) {
  const std::string* v = r.get(column);
  if (!v) {
    if (required) error(r.line, fmt::format("column \"{}\": a value is required", column));
    return std::nullopt;
  }
  double x = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (ec != std::errc() || p != v->data() + v->size() || !std::isfinite(x) || x <= 0) {
    error(r.line, fmt::format("column \"{}\": expected a positive number, got \"{}\"", column, *v));
    return std::nullopt;
  }
  return x;
}

std::optional<std::int64_t> TableReader::integer(const Row& r, std::string_view column,
                                                 std::int64_t min, bool required) {
  const std::string* v = r.get(column);
  if (!v) {
    if (required) error(r.line, fmt::format("column \"{}\": a value is required", column));
    return std::nullopt;
  }
  std::int64_t x = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (ec != std::errc() || p != v->data() + v->size() || x < min || x > (std::int64_t{1} << 40)) {
    error(r.line, fmt::format("column \"{}\": expected a whole number >= {}, got \"{}\"", column,
                              min, *v));
    return std::nullopt;
  }
  return x;
}

std::optional<bool> TableReader::boolean(const Row& r, std::string_view column) {
  const std::string* v = r.get(column);
  if (!v) return std::nullopt;
  if (*v == "true" || *v == "1" || *v == "yes") return true;
  if (*v == "false" || *v == "0" || *v == "no") return false;
  error(r.line, fmt::format("column \"{}\": expected true or false, got \"{}\"", column, *v));
  return std::nullopt;
}

std::optional<Dtype> TableReader::dtype(const Row& r) {
  const std::string* v = r.get("dtype");
  if (!v) {
    error(r.line, "column \"dtype\": a value is required", "fp64, fp32, tf32, bf16, fp16 or fp8");
    return std::nullopt;
  }
  auto d = dtype_from_string(*v);
  if (!d) error(r.line, fmt::format("column \"dtype\": unknown dtype \"{}\"", *v), "fp64, fp32, tf32, bf16, fp16 or fp8");
  return d;
}

std::optional<std::pair<std::string_view, double>> TableReader::throughput(const Row& r, Family family) {
  const auto& f = *std::find_if(families().begin(), families().end(),
                                [&](const FamilyColumns& c) { return c.family == family; });
  std::optional<std::pair<std::string_view, double>> found;
  int filled = 0;
  for (auto column : f.throughput) {
    if (!r.get(column)) continue;
    ++filled;
    if (auto v = positive(r, column)) found = std::pair{column, *v};
  }
  if (filled != 1) {
    error(r.line, fmt::format("fill exactly one of {} ({} given)", join(f.throughput), filled),
          "the published figure; the time is derived from it");
    return std::nullopt;
  }
  return found;
}

void TableReader::row(const Row& r) {
  const std::string* op = r.get("op");
  auto family = op ? family_of(*op) : std::nullopt;
  if (!family) {
    error(r.line, fmt::format("column \"op\": unknown op \"{}\"", op ? *op : ""),
          "all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, reduce, send_recv, gemm, "
          "attention, moe_dispatch, moe_combine, ag_gemm, gemm_rs, memory or serve_iteration");
    return;
  }
  const auto& columns = *std::find_if(families().begin(), families().end(),
                                      [&](const FamilyColumns& c) { return c.family == *family; });
  if (!table_family_) {
    table_family_ = family;
    for (const auto& h : *r.header) {
      bool allowed = false;
      for (const auto* list : {&columns.required, &columns.optional, &columns.throughput}) {
        allowed = allowed || std::find(list->begin(), list->end(), h) != list->end();
      }
      if (!allowed) {
        error(table_line_, fmt::format("column \"{}\" does not apply to op \"{}\"", h, *op),
              fmt::format("columns for this op: {}; start a new table (a new \"op,...\" header) "
                          "for other ops", join(columns.required)));
      }
    }
    for (auto need : columns.required) {
      if (std::find(r.header->begin(), r.header->end(), need) == r.header->end()) {
        error(table_line_, fmt::format("column \"{}\" is required for op \"{}\"", need, *op),
              fmt::format("required: {}", join(columns.required)));
      }
    }
    if (diag_.has_errors()) return;
  } else if (*table_family_ != *family) {
    error(r.line, fmt::format("column \"op\": \"{}\" does not belong in this table", *op),
          "every row of a table measures the same kind of op; start a new table");
    return;
  }

  MeasurementRecord rec;
  rec.source = source_.id;
  rec.label = fmt::format("line {}", r.line);
  double time_s = 0;
  switch (*family) {
    case Family::kCollective: {
      CollectiveRecord c;
      c.kind = *collective_kind_from_string(*op);
      auto ranks = integer(r, "ranks", 1);
      auto nodes = integer(r, "nodes", 1, false);
      auto size = positive(r, "size_bytes");
      if (const std::string* v = r.get("dtype")) c.dtype = *v;
      if (const std::string* v = r.get("algorithm")) c.algorithm = *v;
      if (const std::string* v = r.get("protocol")) {
        if (*v != "any" && *v != "simple" && *v != "ll" && *v != "ll128") {
          error(r.line, fmt::format("column \"protocol\": unknown protocol \"{}\"", *v),
                "any, simple, ll or ll128");
        }
        c.protocol = *v;
      }
      c.in_place = boolean(r, "in_place").value_or(false);
      auto t = throughput(r, *family);
      if (!ranks || !size || !t) return;
      c.ranks = static_cast<int>(std::min<std::int64_t>(*ranks, 1 << 24));
      c.nodes = static_cast<int>(nodes.value_or(source_.nodes.value_or(1)));
      if (c.nodes > c.ranks) {
        error(r.line, fmt::format("column \"nodes\": {} nodes for {} ranks", c.nodes, c.ranks));
        return;
      }
      c.size_bytes = *size;
      if (t->first == "busbw_GBps") {
        time_s = time_from_bus_bandwidth_s(c.kind, c.ranks, c.size_bytes, t->second * kGB);
      } else if (t->first == "algbw_GBps") {
        time_s = c.size_bytes / (t->second * kGB);
      } else {
        time_s = t->second * kUs;
      }
      if (!(time_s > 0) || !std::isfinite(time_s)) {
        error(r.line, "busbw of a 1-rank collective does not give a time",
              "bus bandwidth is zero on one rank; give time_us");
        return;
      }
      rec.shape = c;
      break;
    }
    case Family::kGemm: {
      GemmRecord g;
      auto m = integer(r, "m", 1), n = integer(r, "n", 1), k = integer(r, "k", 1);
      auto batch = integer(r, "batch", 1, false);
      auto d = dtype(r);
      g.tile_m = integer(r, "tile_m", 1, false);
      g.tile_n = integer(r, "tile_n", 1, false);
      g.split_k = integer(r, "split_k", 1, false);
      g.ctas = integer(r, "ctas", 1, false);
      if (const std::string* v = r.get("implementation")) g.implementation = *v;
      auto t = throughput(r, *family);
      if (!m || !n || !k || !d || !t) return;
      g.m = *m;
      g.n = *n;
      g.k = *k;
      g.batch = batch.value_or(1);
      g.dtype = *d;
      double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) *
                     static_cast<double>(g.k) * static_cast<double>(g.batch);
      time_s = t->first == "tflops" ? flops / (t->second * kTera) : t->second * kUs;
      rec.shape = g;
      break;
    }
    case Family::kAttention: {
      AttentionRecord a;
      const std::string* pass = r.get("pass");
      bool pass_ok = false;
      for (auto p : {AttentionPass::kForward, AttentionPass::kBackward,
                     AttentionPass::kForwardBackward, AttentionPass::kDecode}) {
        if (pass && *pass == to_string(p)) {
          a.pass = p;
          pass_ok = true;
        }
      }
      if (!pass_ok) {
        error(r.line, fmt::format("column \"pass\": unknown pass \"{}\"", pass ? *pass : ""),
              "forward, backward, forward_backward or decode");
      }
      auto batch = integer(r, "batch", 1), heads = integer(r, "heads", 1);
      auto kv_heads = integer(r, "kv_heads", 1, false);
      auto seq_q = integer(r, "seq_q", 1), seq_kv = integer(r, "seq_kv", 1, false);
      auto head_dim = integer(r, "head_dim", 1);
      auto causal = boolean(r, "causal");
      if (!r.get("causal")) error(r.line, "column \"causal\": a value is required", "true or false");
      auto d = dtype(r);
      if (const std::string* v = r.get("implementation")) a.implementation = *v;
      auto t = throughput(r, *family);
      if (!pass_ok || !batch || !heads || !seq_q || !head_dim || !causal || !d || !t) return;
      a.batch = *batch;
      a.heads = *heads;
      a.kv_heads = kv_heads.value_or(*heads);
      if (a.heads % a.kv_heads != 0) {
        error(r.line, fmt::format("column \"kv_heads\": {} heads are not a multiple of {}", a.heads,
                                  a.kv_heads));
        return;
      }
      a.seq_q = *seq_q;
      a.seq_kv = seq_kv.value_or(*seq_q);
      a.head_dim = *head_dim;
      a.causal = *causal;
      a.dtype = *d;
      time_s = t->first == "tflops" ? attention_pass_flops(a) / (t->second * kTera) : t->second * kUs;
      rec.shape = a;
      break;
    }
    case Family::kMoe: {
      AllToAllRecord a;
      a.phase = *op == "moe_dispatch" ? MoePhase::kDispatch : MoePhase::kCombine;
      auto ranks = integer(r, "ranks", 1);
      auto nodes = integer(r, "nodes", 1, false);
      auto bytes = positive(r, "bytes_per_rank");
      auto imbalance = positive(r, "imbalance", false);
      if (imbalance && *imbalance < 1) {
        error(r.line, fmt::format("column \"imbalance\": {} is below 1", *imbalance),
              "max over experts of tokens / mean tokens, 1 for uniform routing");
      }
      if (const std::string* v = r.get("implementation")) a.implementation = *v;
      auto t = throughput(r, *family);
      if (!ranks || !bytes || !t) return;
      a.ranks = static_cast<int>(std::min<std::int64_t>(*ranks, 1 << 24));
      a.nodes = static_cast<int>(nodes.value_or(source_.nodes.value_or(1)));
      if (a.nodes > a.ranks) {
        error(r.line, fmt::format("column \"nodes\": {} nodes for {} ranks", a.nodes, a.ranks));
        return;
      }
      a.bytes_per_rank = *bytes;
      a.imbalance = std::max(imbalance.value_or(1.0), 1.0);
      time_s = t->first == "GBps" ? a.bytes_per_rank / (t->second * kGB) : t->second * kUs;
      rec.shape = a;
      break;
    }
    case Family::kOverlap: {
      OverlapRecord o;
      o.pattern = *op == "ag_gemm" ? OverlapPattern::kAllGatherGemm : OverlapPattern::kGemmReduceScatter;
      const std::string* variant = r.get("variant");
      if (variant) o.variant = *variant;
      auto m = integer(r, "m", 1), n = integer(r, "n", 1), k = integer(r, "k", 1);
      auto ranks = integer(r, "ranks", 2);
      auto g = positive(r, "gemm_alone_us"), c = positive(r, "comm_alone_us");
      auto s = positive(r, "sequential_us"), ov = positive(r, "overlapped_us");
      if (!variant) error(r.line, "column \"variant\": a value is required", "decomposed, fused, ...");
      if (!m || !n || !k || !ranks || !g || !c || !s || !ov || !variant) return;
      o.m = *m;
      o.n = *n;
      o.k = *k;
      o.ranks = static_cast<int>(std::min<std::int64_t>(*ranks, 1 << 24));
      o.gemm_alone_s = *g * kUs;
      o.comm_alone_s = *c * kUs;
      o.sequential_s = *s * kUs;
      time_s = *ov * kUs;
      rec.shape = o;
      break;
    }
    case Family::kMemory: {
      MemoryRecord m;
      if (const std::string* v = r.get("kernel")) m.kernel = *v;
      auto bytes = positive(r, "bytes");
      auto t = throughput(r, *family);
      if (!bytes || !t) return;
      m.bytes = *bytes;
      time_s = t->first == "GBps"   ? m.bytes / (t->second * kGB)
               : t->first == "TBps" ? m.bytes / (t->second * 1e12)
                                    : t->second * kUs;
      rec.shape = m;
      break;
    }
    case Family::kServeIteration: {
      // A batch of `batch` sequences of `input_len` tokens each (prefill: prompt length;
      // decode: context length), as serving profilers sweep them.
      ServeIterationRecord s;
      const std::string* model = r.get("model");
      const std::string* phase = r.get("phase");
      auto tp = integer(r, "tensor_parallel_size", 1);
      auto batch = integer(r, "batch", 1);
      auto length = integer(r, "input_len", 1);
      auto d = dtype(r);
      if (!model) error(r.line, "column \"model\": a value is required", "clustersim's model name, e.g. opt-13b");
      if (phase && *phase != "prefill" && *phase != "decode") {
        error(r.line, fmt::format("column \"phase\": unknown phase \"{}\"", *phase), "prefill or decode");
        return;
      }
      if (!phase) error(r.line, "column \"phase\": a value is required", "prefill or decode");
      if (const std::string* v = r.get("implementation")) s.implementation = *v;
      auto t = throughput(r, *family);
      if (!model || !phase || !tp || !batch || !length || !d || !t) return;
      s.model = *model;
      s.tensor_parallel_size = *tp;
      s.phase = *phase == "decode" ? ServePhase::kDecode : ServePhase::kPrefill;
      s.batch = *batch;
      s.tokens = static_cast<double>(*batch * *length);
      s.tokens_squared = static_cast<double>(*batch) * static_cast<double>(*length) * static_cast<double>(*length);
      s.dtype = *d;
      time_s = t->first == "time_ms" ? t->second * 1e-3 : t->second * kUs;
      rec.shape = s;
      break;
    }
  }
  rec.samples_s = {time_s};
  out_.records.push_back(std::move(rec));
}

RecordSet TableReader::read(const std::string& text) {
  std::vector<std::string> header;
  int number = 0;
  bool in_source = true;
  bool header_ok = false;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view raw(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    ++number;
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    std::string line = trim(raw);
    if (line.empty()) continue;
    if (line.front() == '#') {
      if (in_source) source_key(number, std::string_view(line).substr(1));
      continue;  // comments between tables
    }
    if (line.starts_with("op,") || line == "op") {
      if (in_source) finish_source(number);
      in_source = false;
      header = split_csv(line);
      table_family_.reset();
      table_line_ = number;
      std::size_t errors_before = diag_.errors().size();
      check_header(number, header);
      header_ok = diag_.errors().size() == errors_before;
      continue;
    }
    if (in_source || header.empty()) {
      error(number, "expected \"# key: value\" or a header row starting with \"op,\"",
            "see docs/profiles.md, \"Published tables\"");
      in_source = false;
      continue;
    }
    Row r{number, &header, split_csv(line)};
    if (r.values.size() != header.size()) {
      error(number, fmt::format("row has {} values, the header on line {} names {} columns",
                                r.values.size(), table_line_, header.size()),
            "one value per column; leave optional ones empty (a,,b)");
      continue;
    }
    if (header_ok) row(r);
  }
  if (in_source) finish_source(number);
  if (out_.records.empty() && !diag_.has_errors()) {
    diag_.error(file_, "", "no rows", "a header row starting with \"op,\" and one row per figure");
  }
  diag_.throw_if_errors();
  out_.sources.push_back(source_);
  return out_;
}

}  // namespace

bool looks_like_published_table(const std::string& text) {
  bool source_id = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = trim(std::string_view(text).substr(pos, (nl == std::string::npos ? text.size() : nl) - pos));
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    if (line.front() == '#') {
      auto colon = line.find(':');
      if (colon != std::string::npos && trim(std::string_view(line).substr(1, colon - 1)) == "source_id") {
        source_id = true;
      }
      continue;
    }
    return source_id && (line.starts_with("op,") || line == "op");
  }
  return false;
}

RecordSet read_published_table(const std::string& text, const std::string& file) {
  return TableReader(file).read(text);
}

}  // namespace clustersim
