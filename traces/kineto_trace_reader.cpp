#include "traces/kineto_trace_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "traces/measurement_input.hpp"

namespace clustersim {

namespace {

using Json = nlohmann::json;

constexpr double kSecondsPerUs = 1e-6;

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<double> number_at(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::optional<std::int64_t> integer_at(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

std::string string_at(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

const Json& args_of(const Json& event) {
  static const Json kEmpty = Json::object();
  auto it = event.find("args");
  return it != event.end() && it->is_object() ? *it : kEmpty;
}

// Kineto "dtype" (Float, BFloat16, ...) or a recorded "Input type" (float, c10::BFloat16, ...).
struct DtypeInfo {
  std::string name;
  int bytes = 0;
};
std::optional<DtypeInfo> dtype_info(std::string_view raw) {
  std::string t = lowercase(raw);
  if (t.starts_with("c10::")) t = t.substr(5);
  std::erase(t, ' ');
  static const std::map<std::string, DtypeInfo, std::less<>> kTypes = {
      {"float", {"fp32", 4}},     {"double", {"fp64", 8}},     {"half", {"fp16", 2}},
      {"bfloat16", {"bf16", 2}},  {"long", {"int64", 8}},      {"longint", {"int64", 8}},
      {"int", {"int32", 4}},      {"short", {"int16", 2}},     {"shortint", {"int16", 2}},
      {"char", {"int8", 1}},      {"signedchar", {"int8", 1}}, {"byte", {"uint8", 1}},
      {"unsignedchar", {"uint8", 1}}, {"bool", {"bool", 1}},   {"float8_e4m3fn", {"fp8", 1}},
      {"float8_e5m2", {"fp8", 1}}};
  auto it = kTypes.find(t);
  if (it == kTypes.end()) return std::nullopt;
  return it->second;
}

// "allreduce", "_allgather_base", "reduce_scatter_tensor_coalesced", "all_to_all" -> kind.
std::optional<CollectiveKind> collective_from_pytorch_name(std::string_view raw) {
  std::string n = lowercase(raw);
  for (std::string_view drop : {"_tensor_coalesced", "_into_tensor", "_coalesced", "_base", "_tensor"}) {
    if (auto p = n.find(drop); p != std::string::npos) n.erase(p, drop.size());
  }
  std::erase(n, '_');
  if (n == "allreduce") return CollectiveKind::kAllReduce;
  if (n == "allgather") return CollectiveKind::kAllGather;
  if (n == "reducescatter") return CollectiveKind::kReduceScatter;
  if (n == "alltoall" || n == "alltoallv") return CollectiveKind::kAllToAll;
  if (n == "broadcast") return CollectiveKind::kBroadcast;
  if (n == "reduce") return CollectiveKind::kReduce;
  if (n == "send" || n == "recv" || n == "sendrecv") return CollectiveKind::kSendRecv;
  return std::nullopt;  // barrier, gather, scatter, ...
}

// The collective a kernel name implements: "ncclDevKernel_AllReduce_Sum_f32_RING_LL" -> all_reduce.
// SendRecv kernels carry all-to-all, send and receive.
bool kernel_matches(std::string_view kernel, CollectiveKind kind) {
  auto start = kernel.find('_');
  if (start == std::string_view::npos) return false;
  std::string_view rest = kernel.substr(start + 1);
  std::string_view coll = rest.substr(0, rest.find('_'));
  if (coll == "SendRecv") return kind == CollectiveKind::kAllToAll || kind == CollectiveKind::kSendRecv;
  if (coll == "AllReduce") return kind == CollectiveKind::kAllReduce;
  if (coll == "AllGather") return kind == CollectiveKind::kAllGather;
  if (coll == "ReduceScatter") return kind == CollectiveKind::kReduceScatter;
  if (coll == "Broadcast") return kind == CollectiveKind::kBroadcast;
  if (coll == "Reduce") return kind == CollectiveKind::kReduce;
  return true;  // generic or unknown kernel names do not contradict
}

std::vector<std::int64_t> integers_in(std::string_view text) {
  std::vector<std::int64_t> out;
  std::int64_t v = 0;
  bool in_number = false;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      v = v * 10 + (c - '0');
      in_number = true;
      if (v > (std::int64_t{1} << 40)) return {};
    } else if (in_number) {
      out.push_back(v);
      v = 0;
      in_number = false;
    }
  }
  if (in_number) out.push_back(v);
  return out;
}

// Dims of input i from "Input Dims": [[M, K], [K, N], ...].
std::optional<std::vector<std::int64_t>> input_dims(const Json& args, std::size_t i) {
  auto it = args.find("Input Dims");
  if (it == args.end() || !it->is_array() || it->size() <= i || !(*it)[i].is_array()) return std::nullopt;
  std::vector<std::int64_t> dims;
  for (const auto& d : (*it)[i]) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 1) return std::nullopt;
    dims.push_back(d.get<std::int64_t>());
  }
  return dims;
}

std::string input_type(const Json& args, std::size_t i) {
  auto it = args.find("Input type");
  if (it == args.end() || !it->is_array() || it->size() <= i || !(*it)[i].is_string()) return "";
  return (*it)[i].get<std::string>();
}

struct CpuOp {
  double ts = 0, end = 0;
  const Json* event = nullptr;
  int parent = -1;  // index of the enclosing op on the same thread
};

// CPU ops of one thread, nested by time.
struct ThreadOps {
  std::vector<CpuOp> ops;

  void nest() {
    std::sort(ops.begin(), ops.end(), [](const CpuOp& a, const CpuOp& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<int> stack;
    for (int i = 0; i < static_cast<int>(ops.size()); ++i) {
      while (!stack.empty() && ops[stack.back()].end < ops[i].end) stack.pop_back();
      ops[i].parent = stack.empty() ? -1 : stack.back();
      stack.push_back(i);
    }
  }
  // Ops enclosing time t, innermost first.
  std::vector<const CpuOp*> enclosing(double t) const {
    std::vector<const CpuOp*> out;
    auto it = std::upper_bound(ops.begin(), ops.end(), t,
                               [](double v, const CpuOp& op) { return v < op.ts; });
    int i = static_cast<int>(it - ops.begin()) - 1;
    while (i >= 0) {
      if (ops[i].end >= t) out.push_back(&ops[i]);
      i = ops[i].parent;
    }
    return out;
  }
};

std::string thread_key(const Json& event) {
  auto pid = event.find("pid");
  auto tid = event.find("tid");
  return fmt::format("{}/{}", pid == event.end() ? "" : pid->dump(), tid == event.end() ? "" : tid->dump());
}

struct Launch {
  std::string thread;
  double ts = 0;
};

struct CollectiveKey {
  CollectiveKind kind;
  int ranks, nodes;
  double size_bytes;
  std::string dtype, note;
  auto operator<=>(const CollectiveKey&) const = default;
};

struct GemmKey {
  std::int64_t m, n, k, batch;
  Dtype dtype;
  std::int64_t ctas;
  std::string op;
  auto operator<=>(const GemmKey&) const = default;
};

struct OpCall {  // the GEMM kernels one CPU op call launched
  double total_us = 0, longest_us = 0;
  std::int64_t ctas = 0;
  std::string kernel;
};

struct Grouped {
  std::vector<double> samples_s;
  std::string what;  // kernel name or input dims, for the label
};

class KinetoReader {
 public:
  KinetoReader(const Json& doc, const std::string& file) : doc_(doc), file_(file) {}
  RecordSet read();

 private:
  void index_events(const Json& events);
  std::vector<const CpuOp*> launching_ops(const Json& args) const;
  void add_nccl_kernel(const Json& kernel, const std::string& name, double dur_us);
  void add_gemm_kernel(const std::vector<const CpuOp*>& ops, const Json& args,
                       const std::string& name, double dur_us);
  std::pair<int, std::string> nodes_of(const Json* meta, int group_size) const;
  std::optional<GemmKey> gemm_shape(const Json& op, const std::string& kernel) const;

  const Json& doc_;
  std::string file_;
  Diagnostics diag_;
  std::unordered_map<std::string, ThreadOps> threads_;
  std::unordered_map<std::int64_t, Launch> launches_;             // by correlation id
  std::unordered_map<std::int64_t, const Json*> ops_by_external_;  // cpu_op by External id
  std::optional<std::int64_t> world_size_;
  std::optional<std::int64_t> gpus_per_host_;
  std::map<CollectiveKey, Grouped> collectives_;
  std::map<const Json*, OpCall> gemm_calls_;  // by op event: events are one array, so in file order
  std::map<GemmKey, Grouped> gemms_;
};

void KinetoReader::index_events(const Json& events) {
  for (const auto& e : events) {
    if (!e.is_object() || string_at(e, "ph") != "X") continue;
    std::string cat = string_at(e, "cat");
    auto ts = number_at(e, "ts");
    auto dur = number_at(e, "dur");
    if (!ts || !dur || *dur < 0) continue;
    const Json& args = args_of(e);
    if (cat == "cpu_op" || cat == "user_annotation") {
      threads_[thread_key(e)].ops.push_back({*ts, *ts + *dur, &e, -1});
      if (cat == "cpu_op") {
        if (auto ext = integer_at(args, "External id")) ops_by_external_.emplace(*ext, &e);
      }
    } else if (cat == "cuda_runtime" || cat == "cuda_driver") {
      if (auto corr = integer_at(args, "correlation")) launches_[*corr] = {thread_key(e), *ts};
    }
  }
  for (auto& [key, ops] : threads_) ops.nest();
}

std::vector<const CpuOp*> KinetoReader::launching_ops(const Json& args) const {
  auto corr = integer_at(args, "correlation");
  if (!corr) return {};
  auto launch = launches_.find(*corr);
  if (launch == launches_.end()) return {};
  auto thread = threads_.find(launch->second.thread);
  if (thread == threads_.end()) return {};
  return thread->second.enclosing(launch->second.ts);
}

std::pair<int, std::string> KinetoReader::nodes_of(const Json* meta, int group_size) const {
  if (gpus_per_host_ && meta) {
    auto ranks = integers_in(string_at(*meta, "Process Group Ranks"));
    if (!ranks.empty()) {
      std::set<std::int64_t> hosts;
      for (auto r : ranks) hosts.insert(r / *gpus_per_host_);
      return {static_cast<int>(hosts.size()),
              fmt::format("nodes from the group's ranks at {} GPUs per host", *gpus_per_host_)};
    }
  }
  if (gpus_per_host_ && world_size_ && group_size == *world_size_) {
    return {static_cast<int>((*world_size_ + *gpus_per_host_ - 1) / *gpus_per_host_),
            fmt::format("nodes from world size at {} GPUs per host", *gpus_per_host_)};
  }
  return {1, "nodes unknown, assumed 1"};
}

void KinetoReader::add_nccl_kernel(const Json& kernel, const std::string& name, double dur_us) {
  const Json& args = args_of(kernel);
  auto ops = launching_ops(args);
  // The collective's metadata: on the kernel, else on the record_param_comms op that launched it.
  const Json* meta = nullptr;
  if (args.contains("Collective name")) meta = &args;
  if (!meta) {
    if (auto ext = integer_at(args, "External id")) {
      auto it = ops_by_external_.find(*ext);
      if (it != ops_by_external_.end() && args_of(*it->second).contains("Collective name")) {
        meta = &args_of(*it->second);
      }
    }
  }
  for (const CpuOp* op : ops) {
    if (meta) break;
    if (args_of(*op->event).contains("Collective name")) meta = &args_of(*op->event);
  }
  std::optional<CollectiveKind> kind;
  double elements = 0;
  std::optional<DtypeInfo> dtype;
  int group_size = 0;
  std::string note;
  if (meta) {
    kind = collective_from_pytorch_name(string_at(*meta, "Collective name"));
    double in = number_at(*meta, "In msg nelems").value_or(0);
    double out = number_at(*meta, "Out msg nelems").value_or(0);
    elements = std::max(in, out);
    dtype = dtype_info(string_at(*meta, "dtype"));
    group_size = static_cast<int>(integer_at(*meta, "Group size").value_or(0));
  } else {
    // Older traces: the "nccl:<collective>" op records the tensor it sends.
    for (const CpuOp* op : ops) {
      std::string op_name = string_at(*op->event, "name");
      if (!op_name.starts_with("nccl:")) continue;
      kind = collective_from_pytorch_name(op_name.substr(5));
      const Json& op_args = args_of(*op->event);
      if (auto dims = input_dims(op_args, 0); dims && !dims->empty()) {
        elements = 1;
        for (auto d : *dims) elements *= static_cast<double>(d);
      }
      dtype = dtype_info(input_type(op_args, 0));
      if (world_size_) group_size = static_cast<int>(*world_size_);
      note = "group size assumed = world size (the trace records none)";
      break;
    }
  }
  if (!kind || elements <= 0 || !dtype || group_size < 1) return;
  // A kernel that cannot run the collective its CPU op names (a SendRecv kernel under an
  // all_reduce op, as in filtered traces) is not trusted.
  if (!kernel_matches(name, *kind)) return;
  auto [nodes, nodes_note] = nodes_of(meta, group_size);
  nodes = std::clamp(nodes, 1, group_size);
  note = note.empty() ? nodes_note : fmt::format("{}; {}", note, nodes_note);
  CollectiveKey key{*kind, group_size, nodes, elements * dtype->bytes, dtype->name, note};
  Grouped& g = collectives_[key];
  if (g.what.empty()) g.what = name.substr(0, name.find('('));
  g.samples_s.push_back(dur_us * kSecondsPerUs);
}

std::optional<GemmKey> KinetoReader::gemm_shape(const Json& op, const std::string& kernel) const {
  std::string name = string_at(op, "name");
  const Json& args = args_of(op);
  // Index of the two matrix inputs: addmm / baddbmm carry the bias first.
  std::size_t a = name == "aten::addmm" || name == "aten::baddbmm" ? 1 : 0;
  auto da = input_dims(args, a);
  auto db = input_dims(args, a + 1);
  if (!da || !db || da->size() < 2 || db->size() < 2) return std::nullopt;
  GemmKey key{};
  key.op = name;
  key.batch = 1;
  if (db->size() == 2) {  // [..., M, K] x [K, N]
    key.m = 1;
    for (std::size_t i = 0; i + 1 < da->size(); ++i) key.m *= (*da)[i];
    key.k = da->back();
    if ((*db)[0] != key.k) return std::nullopt;
    key.n = (*db)[1];
  } else if (db->size() == 3 && da->size() == 3 && (*da)[0] == (*db)[0]) {  // batched
    key.batch = (*da)[0];
    key.m = (*da)[1];
    key.k = (*da)[2];
    if ((*db)[1] != key.k) return std::nullopt;
    key.n = (*db)[2];
  } else {
    return std::nullopt;
  }
  auto type = dtype_info(input_type(args, a));
  if (!type) return std::nullopt;
  std::string lower_kernel = lowercase(kernel);
  std::string dname = type->name;
  if (dname == "fp32" && (lower_kernel.find("tf32") != std::string::npos ||
                          lower_kernel.find("s1688") != std::string::npos)) {
    dname = "tf32";
  }
  auto dtype = dtype_from_string(dname);
  if (!dtype) return std::nullopt;
  key.dtype = *dtype;
  return key;
}

void KinetoReader::add_gemm_kernel(const std::vector<const CpuOp*>& ops, const Json& args,
                                   const std::string& name, double dur_us) {
  if (ops.empty()) return;
  std::string op = string_at(*ops.front()->event, "name");
  if (op != "aten::mm" && op != "aten::addmm" && op != "aten::bmm" && op != "aten::baddbmm" &&
      op != "aten::matmul") {
    return;
  }
  OpCall& call = gemm_calls_[ops.front()->event];
  call.total_us += dur_us;
  if (dur_us >= call.longest_us) {
    call.longest_us = dur_us;
    call.kernel = name;
    call.ctas = 0;
    auto grid = args.find("grid");
    if (grid != args.end() && grid->is_array()) {
      call.ctas = 1;
      for (const auto& g : *grid) call.ctas *= g.is_number_integer() ? g.get<std::int64_t>() : 1;
    }
  }
}

RecordSet KinetoReader::read() {
  JsonObjectReader root(diag_, file_, "", doc_);
  const Json* events = root.raw("traceEvents");
  if (!events || !events->is_array()) {
    root.error("traceEvents", events ? "expected an array" : "is required",
               "a Chrome trace: {\"traceEvents\": [...]}");
  }
  diag_.throw_if_errors();

  RecordSource s;
  s.id = source_id_from_path(file_);
  s.kind = "kineto";
  s.tool = "PyTorch profiler (Kineto)";
  s.file = file_name_of(file_);
  s.timer = "cupti";
  s.statistic = "sample";
  s.gpu = "unknown";
  const Json* devices = root.raw("deviceProperties");
  if (devices && devices->is_array() && !devices->empty()) {
    gpus_per_host_ = static_cast<std::int64_t>(devices->size());
  }
  if (const Json* dist = root.raw("distributedInfo"); dist && dist->is_object()) {
    s.nccl = string_at(*dist, "nccl_version");
    world_size_ = integer_at(*dist, "world_size");
    if (world_size_ && *world_size_ < 1) world_size_.reset();
  }
  if (world_size_ && gpus_per_host_) {
    s.gpus_per_node = std::min(*gpus_per_host_, *world_size_);
    s.nodes = (*world_size_ + *gpus_per_host_ - 1) / *gpus_per_host_;
  }

  index_events(*events);
  std::optional<std::int64_t> device;
  for (std::size_t i = 0; i < events->size(); ++i) {
    const Json& e = (*events)[i];
    if (!e.is_object() || string_at(e, "cat") != "kernel" || string_at(e, "ph") != "X") continue;
    std::string name = string_at(e, "name");
    auto dur = number_at(e, "dur");
    if (!dur || *dur < 0) {
      auto it = e.find("dur");
      diag_.error(file_, json_pointer_append(json_pointer_append("/traceEvents", i), "dur"),
                  fmt::format("expected a kernel duration >= 0 in microseconds, got {}",
                              it == e.end() ? std::string("nothing") : describe_json_value(*it)),
                  "Kineto writes \"dur\" in microseconds");
      continue;
    }
    if (*dur == 0) continue;
    const Json& args = args_of(e);
    if (!device) device = integer_at(args, "device");
    if (name.starts_with("ncclKernel_") || name.starts_with("ncclDevKernel_")) {
      add_nccl_kernel(e, name, *dur);
    } else {
      add_gemm_kernel(launching_ops(args), args, name, *dur);
    }
  }
  diag_.throw_if_errors();
  if (gpus_per_host_) {
    std::size_t d = device && *device >= 0 && static_cast<std::size_t>(*device) < devices->size()
                        ? static_cast<std::size_t>(*device) : 0;
    const Json& props = (*devices)[d];
    if (props.is_object()) {
      if (auto gpu = string_at(props, "name"); !gpu.empty()) s.gpu = gpu;
      if (auto sms = integer_at(props, "numSms"); sms && *sms > 0) s.sm_count = *sms;
    }
  }

  for (const auto& [op, call] : gemm_calls_) {
    auto key = gemm_shape(*op, call.kernel);
    if (!key) continue;  // shapes not recorded (record_shapes=False) or not a plain matrix product
    key->ctas = call.ctas;
    Grouped& g = gemms_[*key];
    if (g.what.empty()) g.what = args_of(*op).at("Input Dims").dump();
    g.samples_s.push_back(call.total_us * kSecondsPerUs);
  }

  RecordSet out;
  for (const auto& [key, g] : collectives_) {
    CollectiveRecord c;
    c.kind = key.kind;
    c.ranks = key.ranks;
    c.nodes = key.nodes;
    c.size_bytes = key.size_bytes;
    c.dtype = key.dtype;
    MeasurementRecord rec{s.id, fmt::format("{} x{}; {}", g.what, g.samples_s.size(), key.note), c,
                          g.samples_s};
    out.records.push_back(std::move(rec));
  }
  for (const auto& [key, g] : gemms_) {
    GemmRecord gemm;
    gemm.m = key.m;
    gemm.n = key.n;
    gemm.k = key.k;
    gemm.batch = key.batch;
    gemm.dtype = key.dtype;
    gemm.implementation = "torch";
    if (key.ctas > 0) gemm.ctas = key.ctas;
    MeasurementRecord rec{s.id, fmt::format("{} Input Dims {} x{}", key.op, g.what, g.samples_s.size()),
                          gemm, g.samples_s};
    out.records.push_back(std::move(rec));
  }
  if (out.records.empty()) {
    throw_input_error(file_, "/traceEvents",
                      "found no NCCL kernel with a known collective and size, and no GEMM kernel "
                      "whose CPU op recorded its shapes",
                      "profile with record_shapes=True; NCCL kernels need PyTorch's "
                      "record_param_comms metadata or nccl:<collective> ops");
  }
  out.sources.push_back(std::move(s));
  return out;
}

}  // namespace

bool looks_like_kineto_trace(const nlohmann::json& doc) {
  return doc.is_object() && doc.contains("traceEvents");
}

RecordSet read_kineto_trace(const nlohmann::json& doc, const std::string& file) {
  return KinetoReader(doc, file).read();
}

}  // namespace clustersim
