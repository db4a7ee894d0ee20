#include "models/cost/record_json.hpp"

#include <fmt/format.h>

#include <cmath>
#include <set>

namespace clustersim {

namespace {

constexpr double kUsPerS = 1e6;
constexpr std::int64_t kMaxDim = std::int64_t{1} << 40;

void set_optional(nlohmann::json& j, const char* key, const std::optional<std::int64_t>& v) {
  if (v) j[key] = *v;
}
void set_nonempty(nlohmann::json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

struct ShapeWriter {
  nlohmann::json& j;
  void operator()(const CollectiveRecord& c) const {
    j["op"] = to_string(c.kind);
    j["ranks"] = c.ranks;
    j["nodes"] = c.nodes;
    j["algorithm"] = c.algorithm;
    j["protocol"] = c.protocol;
    j["size_bytes"] = c.size_bytes;
    j["dtype"] = c.dtype;
    j["in_place"] = c.in_place;
  }
  void operator()(const GemmRecord& g) const {
    j["op"] = "gemm";
    j["m"] = g.m;
    j["n"] = g.n;
    j["k"] = g.k;
    j["batch"] = g.batch;
    j["dtype"] = to_string(g.dtype);
    j["implementation"] = g.implementation;
    set_optional(j, "tile_m", g.tile_m);
    set_optional(j, "tile_n", g.tile_n);
    set_optional(j, "split_k", g.split_k);
    set_optional(j, "ctas", g.ctas);
  }
  void operator()(const AttentionRecord& a) const {
    j["op"] = "attention";
    j["pass"] = to_string(a.pass);
    j["batch"] = a.batch;
    j["heads"] = a.heads;
    j["kv_heads"] = a.kv_heads;
    j["seq_q"] = a.seq_q;
    j["seq_kv"] = a.seq_kv;
    j["head_dim"] = a.head_dim;
    j["causal"] = a.causal;
    j["dtype"] = to_string(a.dtype);
    j["implementation"] = a.implementation;
  }
  void operator()(const AllToAllRecord& a) const {
    j["op"] = a.phase == MoePhase::kDispatch ? "moe_dispatch" : "moe_combine";
    j["ranks"] = a.ranks;
    j["nodes"] = a.nodes;
    j["bytes_per_rank"] = a.bytes_per_rank;
    j["imbalance"] = a.imbalance;
    j["implementation"] = a.implementation;
  }
  void operator()(const OverlapRecord& o) const {
    j["op"] = to_string(o.pattern);
    j["variant"] = o.variant;
    j["m"] = o.m;
    j["n"] = o.n;
    j["k"] = o.k;
    j["ranks"] = o.ranks;
    j["gemm_alone_us"] = o.gemm_alone_s * kUsPerS;
    j["comm_alone_us"] = o.comm_alone_s * kUsPerS;
    j["sequential_us"] = o.sequential_s * kUsPerS;
  }
  void operator()(const MemoryRecord& m) const {
    j["op"] = "memory";
    j["kernel"] = m.kernel;
    j["bytes"] = m.bytes;
  }
  void operator()(const ServeIterationRecord& s) const {
    j["op"] = "serve_iteration";
    j["model"] = s.model;
    j["tensor_parallel_size"] = s.tensor_parallel_size;
    j["phase"] = to_string(s.phase);
    j["batch"] = s.batch;
    j["tokens"] = s.tokens;
    j["tokens_squared"] = s.tokens_squared;
    j["dtype"] = to_string(s.dtype);
    j["implementation"] = s.implementation;
  }
};

const std::set<std::string, std::less<>> kTimers = {"cuda_event", "cupti", "host_wall",
                                                    "published", "unknown"};

std::string dtype_names() { return "\"fp64\", \"fp32\", \"tf32\", \"bf16\", \"fp16\" or \"fp8\""; }

std::optional<Dtype> read_dtype(JsonObjectReader& r, std::string_view key) {
  auto name = r.string(key);
  if (!name) {
    if (!r.has(key)) r.error(key, "is required", dtype_names());
    return std::nullopt;
  }
  auto d = dtype_from_string(*name);
  if (!d) r.error(key, fmt::format("unknown dtype \"{}\"", *name), dtype_names());
  return d;
}

std::int64_t dim(JsonObjectReader& r, std::string_view key) {
  return r.required_integer(key, 1, kMaxDim).value_or(1);
}

std::optional<std::int64_t> optional_dim(JsonObjectReader& r, std::string_view key) {
  return r.integer(key, 1, kMaxDim);
}

double positive_us_as_s(JsonObjectReader& r, std::string_view key) {
  return r.required_positive_number(key).value_or(0) / kUsPerS;
}

RecordShape read_shape(JsonObjectReader& r, const std::string& op) {
  if (auto kind = collective_kind_from_string(op)) {
    CollectiveRecord c;
    c.kind = *kind;
    c.ranks = static_cast<int>(r.required_integer("ranks", 1, 1 << 24).value_or(1));
    c.nodes = static_cast<int>(r.integer("nodes", 1, 1 << 24).value_or(1));
    if (c.nodes > c.ranks) r.error("nodes", fmt::format("{} nodes for {} ranks", c.nodes, c.ranks),
                                   "a communicator spans at most one node per rank");
    c.algorithm = r.string("algorithm").value_or("any");
    c.protocol = r.choice("protocol", {"any", "simple", "ll", "ll128"}).value_or("any");
    c.size_bytes = r.required_positive_number("size_bytes").value_or(1);
    c.dtype = r.string("dtype").value_or("unknown");
    c.in_place = r.boolean("in_place").value_or(false);
    return c;
  }
  if (op == "gemm") {
    GemmRecord g;
    g.m = dim(r, "m");
    g.n = dim(r, "n");
    g.k = dim(r, "k");
    g.batch = r.integer("batch", 1, kMaxDim).value_or(1);
    g.dtype = read_dtype(r, "dtype").value_or(Dtype::kBf16);
    g.implementation = r.string("implementation").value_or("unknown");
    g.tile_m = optional_dim(r, "tile_m");
    g.tile_n = optional_dim(r, "tile_n");
    g.split_k = optional_dim(r, "split_k");
    g.ctas = optional_dim(r, "ctas");
    return g;
  }
  if (op == "attention") {
    AttentionRecord a;
    auto pass = r.required_choice("pass", {"forward", "backward", "forward_backward", "decode"},
                                  "\"forward\", \"backward\", \"forward_backward\" or \"decode\"");
    for (auto p : {AttentionPass::kForward, AttentionPass::kBackward,
                   AttentionPass::kForwardBackward, AttentionPass::kDecode}) {
      if (pass && *pass == to_string(p)) a.pass = p;
    }
    a.batch = dim(r, "batch");
    a.heads = dim(r, "heads");
    a.kv_heads = r.integer("kv_heads", 1, kMaxDim).value_or(a.heads);
    if (a.heads % a.kv_heads != 0) {
      r.error("kv_heads", fmt::format("{} heads are not a multiple of {} kv_heads", a.heads,
                                      a.kv_heads),
              "grouped-query attention shares each KV head among heads / kv_heads query heads");
    }
    a.seq_q = dim(r, "seq_q");
    a.seq_kv = r.integer("seq_kv", 1, kMaxDim).value_or(a.seq_q);
    a.head_dim = dim(r, "head_dim");
    a.causal = r.boolean("causal").value_or(false);
    a.dtype = read_dtype(r, "dtype").value_or(Dtype::kBf16);
    a.implementation = r.string("implementation").value_or("unknown");
    return a;
  }
  if (op == "moe_dispatch" || op == "moe_combine") {
    AllToAllRecord a;
    a.phase = op == "moe_dispatch" ? MoePhase::kDispatch : MoePhase::kCombine;
    a.ranks = static_cast<int>(r.required_integer("ranks", 1, 1 << 24).value_or(1));
    a.nodes = static_cast<int>(r.integer("nodes", 1, 1 << 24).value_or(1));
    a.bytes_per_rank = r.required_positive_number("bytes_per_rank").value_or(1);
    a.imbalance = r.number("imbalance", 1.0, 1e6).value_or(1.0);
    a.implementation = r.string("implementation").value_or("unknown");
    return a;
  }
  if (op == "memory") {
    MemoryRecord m;
    m.kernel = r.string("kernel").value_or("copy");
    m.bytes = r.required_positive_number("bytes").value_or(1);
    return m;
  }
  if (op == "serve_iteration") {
    ServeIterationRecord s;
    s.model = r.required_string("model").value_or("");
    s.tensor_parallel_size = r.required_integer("tensor_parallel_size", 1, 1 << 20).value_or(1);
    auto phase = r.required_choice("phase", {"prefill", "decode"}, "\"prefill\" or \"decode\"");
    s.phase = phase && *phase == "decode" ? ServePhase::kDecode : ServePhase::kPrefill;
    s.batch = dim(r, "batch");
    s.tokens = r.required_positive_number("tokens").value_or(1);
    // Uniform lengths when not given: batch x (tokens / batch)^2.
    s.tokens_squared = r.number("tokens_squared", 0, 1e30).value_or(s.tokens * s.tokens / static_cast<double>(s.batch));
    s.dtype = read_dtype(r, "dtype").value_or(Dtype::kFp16);
    s.implementation = r.string("implementation").value_or("unknown");
    return s;
  }
  OverlapRecord o;
  o.pattern = op == "ag_gemm" ? OverlapPattern::kAllGatherGemm : OverlapPattern::kGemmReduceScatter;
  o.variant = r.string("variant").value_or("unknown");
  o.m = dim(r, "m");
  o.n = dim(r, "n");
  o.k = dim(r, "k");
  o.ranks = static_cast<int>(r.required_integer("ranks", 2, 1 << 24).value_or(2));
  o.gemm_alone_s = positive_us_as_s(r, "gemm_alone_us");
  o.comm_alone_s = positive_us_as_s(r, "comm_alone_us");
  o.sequential_s = positive_us_as_s(r, "sequential_us");
  return o;
}

constexpr std::string_view kOps[] = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all",
                                     "broadcast",  "reduce",     "send_recv",      "gemm",
                                     "attention",  "moe_dispatch", "moe_combine",  "ag_gemm",
                                     "gemm_rs",    "memory",       "serve_iteration"};

std::string op_names() {
  std::string out;
  for (auto op : kOps) out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", op);
  return out;
}

std::vector<double> read_samples_us(JsonObjectReader& r) {
  std::vector<double> samples_s;
  const nlohmann::json* raw = r.raw("samples_us");
  if (!raw) {
    r.error("samples_us", "is required", "an array of measured times in microseconds");
    return samples_s;
  }
  if (!raw->is_array() || raw->empty()) {
    r.error("samples_us", fmt::format("expected a non-empty array, got {}", describe_json_value(*raw)),
            "an array of measured times in microseconds");
    return samples_s;
  }
  for (std::size_t i = 0; i < raw->size(); ++i) {
    const auto& v = (*raw)[i];
    if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>())) {
      r.diagnostics().error(r.file(), json_pointer_append(r.pointer_of("samples_us"), i),
                            fmt::format("expected a positive time, got {}", describe_json_value(v)),
                            "microseconds, > 0");
      continue;
    }
    samples_s.push_back(v.get<double>() / kUsPerS);
  }
  return samples_s;
}

RecordSource read_source(JsonObjectReader& r) {
  RecordSource s;
  s.id = r.required_string("id").value_or("");
  JsonObjectReader p = r.object("provenance", true);
  s.kind = p.required_choice("kind", {"harness", "nccl-tests", "kineto", "literature"},
                             "\"harness\", \"nccl-tests\", \"kineto\" or \"literature\"")
               .value_or("");
  s.tool = p.string("tool").value_or("");
  s.url = p.string("url").value_or("");
  s.date = p.string("date").value_or("");
  s.file = p.string("file").value_or("");
  p.reject_unknown_keys();
  JsonObjectReader sys = r.object("system", true);
  s.gpu = sys.required_string("gpu").value_or("");
  s.sm_count = sys.integer("sm_count", 1, 100000);
  s.sm_clock_mhz = sys.number("sm_clock_mhz", 1, 1e5);
  s.memory_clock_mhz = sys.number("memory_clock_mhz", 1, 1e5);
  s.driver = sys.string("driver").value_or("");
  s.cuda = sys.string("cuda").value_or("");
  s.nccl = sys.string("nccl").value_or("");
  s.gpus_per_node = sys.integer("gpus_per_node", 1, 1024);
  s.nodes = sys.integer("nodes", 1, 1 << 24);
  s.interconnect = sys.string("interconnect").value_or("");
  if (const nlohmann::json* env = sys.raw("env")) {
    if (!env->is_object()) {
      sys.error("env", fmt::format("expected an object, got {}", describe_json_value(*env)),
                "{\"NCCL_ALGO\": \"Ring\", ...}");
    } else {
      for (const auto& [k, v] : env->items()) {
        if (v.is_string()) {
          s.env[k] = v.get<std::string>();
        } else {
          sys.diagnostics().error(sys.file(), json_pointer_append(sys.pointer_of("env"), k),
                                  "expected a string", "environment values are strings");
        }
      }
    }
  }
  sys.reject_unknown_keys();
  JsonObjectReader m = r.object("method", true);
  s.timer = m.required_choice("timer", {"cuda_event", "cupti", "host_wall", "published", "unknown"},
                              "\"cuda_event\", \"cupti\", \"host_wall\", \"published\" or \"unknown\"")
                .value_or("unknown");
  s.warmup_iterations = m.integer("warmup_iterations", 0, INT64_MAX);
  s.iterations = m.integer("iterations", 1, INT64_MAX);
  s.l2 = m.choice("l2", {"flush", "rotate", "none", "unknown"}).value_or("unknown");
  s.statistic = m.required_choice("statistic", {"sample", "mean", "median", "min", "max"},
                                  "what each sample is: \"sample\" (one timing), \"mean\", "
                                  "\"median\", \"min\" or \"max\" of several")
                    .value_or("sample");
  m.reject_unknown_keys();
  r.reject_unknown_keys();
  return s;
}

}  // namespace

nlohmann::json samples_to_us(const std::vector<double>& samples_s) {
  nlohmann::json out = nlohmann::json::array();
  for (double s : samples_s) out.push_back(s * kUsPerS);
  return out;
}

nlohmann::json to_json(const RecordSource& s) {
  nlohmann::json provenance = {{"kind", s.kind}};
  set_nonempty(provenance, "tool", s.tool);
  set_nonempty(provenance, "url", s.url);
  set_nonempty(provenance, "date", s.date);
  set_nonempty(provenance, "file", s.file);
  nlohmann::json system = {{"gpu", s.gpu}};
  set_optional(system, "sm_count", s.sm_count);
  if (s.sm_clock_mhz) system["sm_clock_mhz"] = *s.sm_clock_mhz;
  if (s.memory_clock_mhz) system["memory_clock_mhz"] = *s.memory_clock_mhz;
  set_nonempty(system, "driver", s.driver);
  set_nonempty(system, "cuda", s.cuda);
  set_nonempty(system, "nccl", s.nccl);
  if (!s.env.empty()) system["env"] = s.env;
  set_optional(system, "gpus_per_node", s.gpus_per_node);
  set_optional(system, "nodes", s.nodes);
  set_nonempty(system, "interconnect", s.interconnect);
  nlohmann::json method = {{"timer", s.timer}, {"l2", s.l2}, {"statistic", s.statistic}};
  set_optional(method, "warmup_iterations", s.warmup_iterations);
  set_optional(method, "iterations", s.iterations);
  return {{"id", s.id}, {"provenance", provenance}, {"system", system}, {"method", method}};
}

nlohmann::json to_json(const MeasurementRecord& record) {
  nlohmann::json j = {{"source", record.source}};
  set_nonempty(j, "label", record.label);
  std::visit(ShapeWriter{j}, record.shape);
  j["samples_us"] = samples_to_us(record.samples_s);
  return j;
}

nlohmann::json record_set_to_json(const RecordSet& set) {
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : set.sources) sources.push_back(to_json(s));
  nlohmann::json records = nlohmann::json::array();
  for (const auto& r : set.records) records.push_back(to_json(r));
  return {{"schema", kRecordsSchema}, {"sources", sources}, {"records", records}};
}

void read_record_arrays(JsonObjectReader& object, RecordSet& out) {
  Diagnostics& diag = object.diagnostics();
  std::set<std::string, std::less<>> source_ids;
  const nlohmann::json* sources = object.raw("sources");
  if (!sources || !sources->is_array()) {
    object.error("sources", sources ? "expected an array" : "is required",
                 "a list of {\"id\", \"provenance\", \"system\", \"method\"}");
  } else {
    for (std::size_t i = 0; i < sources->size(); ++i) {
      JsonObjectReader r(diag, object.file(), json_pointer_append(object.pointer_of("sources"), i),
                         (*sources)[i]);
      if (!r.is_object()) continue;
      RecordSource s = read_source(r);
      if (!source_ids.insert(s.id).second) {
        r.error("id", fmt::format("source id \"{}\" is used twice", s.id), "ids must be unique");
      }
      out.sources.push_back(std::move(s));
    }
  }
  const nlohmann::json* records = object.raw("records");
  if (!records || !records->is_array()) {
    object.error("records", records ? "expected an array" : "is required",
                 "a list of measurement records");
    return;
  }
  std::vector<std::string> known_ids(source_ids.begin(), source_ids.end());
  for (std::size_t i = 0; i < records->size(); ++i) {
    JsonObjectReader r(diag, object.file(), json_pointer_append(object.pointer_of("records"), i),
                       (*records)[i]);
    if (!r.is_object()) continue;
    MeasurementRecord rec;
    rec.source = r.required_string("source").value_or("");
    if (r.has("source") && !source_ids.count(rec.source)) {
      auto near = closest_match(rec.source, known_ids);
      r.error("source", fmt::format("no source with id \"{}\"", rec.source),
              near ? fmt::format("did you mean \"{}\"?", *near) : "an id listed in /sources");
    }
    rec.label = r.string("label").value_or("");
    auto op = r.string("op");
    bool known_op = false;
    for (auto k : kOps) known_op = known_op || (op && *op == k);
    if (!op || !known_op) {
      auto near = op ? closest_match(*op, {std::begin(kOps), std::end(kOps)}) : std::nullopt;
      r.error("op", op ? fmt::format("unknown op \"{}\"", *op) : "is required",
              near ? fmt::format("did you mean \"{}\"?", *near) : op_names());
      continue;
    }
    rec.shape = read_shape(r, *op);
    rec.samples_s = read_samples_us(r);
    r.reject_unknown_keys();
    out.records.push_back(std::move(rec));
  }
}

RecordSet load_record_set(const std::string& path) {
  JsonDocument doc = read_json_document(path, "records");
  Diagnostics diag;
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  r.required_choice("schema", {kRecordsSchema}, fmt::format("\"{}\"", kRecordsSchema));
  RecordSet set;
  read_record_arrays(r, set);
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return set;
}

}  // namespace clustersim
