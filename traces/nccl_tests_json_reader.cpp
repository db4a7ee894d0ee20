#include "traces/nccl_tests_json_reader.hpp"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "models/inputs/json_reader.hpp"
#include "traces/measurement_input.hpp"
#include "traces/nccl_tests_common.hpp"

namespace clustersim {

namespace {

constexpr std::string_view kHalves[] = {"out_of_place", "in_place"};

struct Half {
  bool present = false;
  double time_us = 0;
  double algbw = 0, busbw = 0;
  std::vector<double> per_iteration_us;
};

// A number, or "nan" (nccl-tests writes NaN as a string): nullopt and no error for "nan".
std::optional<double> number_or_nan(JsonObjectReader& r, std::string_view key, bool& is_nan) {
  const nlohmann::json* v = r.raw(key);
  is_nan = v && v->is_string() && v->get<std::string>() == "nan";
  if (is_nan) return std::nullopt;
  return r.number(key, 0, 1e18);
}

Half read_half(JsonObjectReader& result, int h, Diagnostics& diag) {
  Half half;
  const nlohmann::json* raw = result.raw(kHalves[h]);
  if (!raw || raw->is_null()) return half;
  JsonObjectReader r(diag, result.file(), result.pointer_of(kHalves[h]), *raw);
  if (!r.is_object()) return half;
  std::string_view time_key = r.has("cpu_time") ? "cpu_time" : "time";
  bool nan = false;
  auto time = number_or_nan(r, time_key, nan);
  if (nan) return half;
  if (!time || *time <= 0) {
    if (!time && !r.has(time_key)) {
      r.error(time_key, "is required", "the measured time in microseconds");
    } else if (time) {
      r.error(time_key, fmt::format("expected a time > 0, got {}", *time), "microseconds");
    }
    return half;
  }
  half.time_us = *time;
  bool alg_nan = false, bus_nan = false;
  auto alg = number_or_nan(r, "alg_bw", alg_nan);
  auto bus = number_or_nan(r, "bus_bw", bus_nan);
  if (!alg || !bus) {
    if (!alg && !alg_nan && !r.has("alg_bw")) r.error("alg_bw", "is required", "GB/s");
    if (!bus && !bus_nan && !r.has("bus_bw")) r.error("bus_bw", "is required", "GB/s");
    return half;
  }
  half.algbw = *alg;
  half.busbw = *bus;
  half.present = true;
  std::string per_iter = fmt::format("{}_per_iter", kHalves[h]);
  if (const nlohmann::json* it = result.raw(per_iter); it && it->is_object()) {
    JsonObjectReader pi(diag, result.file(), result.pointer_of(per_iter), *it);
    const nlohmann::json* times = pi.raw("times_us");
    if (times && times->is_array()) {
      for (std::size_t i = 0; i < times->size(); ++i) {
        const auto& t = (*times)[i];
        if (!t.is_number() || !(t.get<double>() > 0) || !std::isfinite(t.get<double>())) {
          diag.error(pi.file(), json_pointer_append(pi.pointer_of("times_us"), i),
                     fmt::format("expected a time > 0, got {}", describe_json_value(t)),
                     "microseconds");
          continue;
        }
        half.per_iteration_us.push_back(t.get<double>());
      }
    }
  }
  return half;
}

}  // namespace

bool looks_like_nccl_tests_json(const nlohmann::json& doc) {
  return doc.is_object() && doc.contains("results") &&
         (doc.contains("config") || doc.contains("nccl_version") || doc.contains("args"));
}

RecordSet read_nccl_tests_json(const nlohmann::json& doc, const std::string& file,
                               std::optional<CollectiveKind> collective_hint) {
  Diagnostics diag;
  JsonObjectReader root(diag, file, "", doc);
  diag.throw_if_errors();

  RecordSource s;
  s.id = source_id_from_path(file);
  s.kind = "nccl-tests";
  s.file = file_name_of(file);
  s.timer = "host_wall";
  s.l2 = "none";
  s.statistic = "mean";

  std::optional<CollectiveKind> kind;
  std::string binary;
  if (const nlohmann::json* args = root.raw("args"); args && args->is_array() && !args->empty() &&
                                                    (*args)[0].is_string()) {
    std::string program = (*args)[0].get<std::string>();
    binary = program.substr(program.find_last_of('/') + 1);
    kind = collective_from_nccl_tests_binary(program);
    if (!kind && looks_like_nccl_tests_binary(program)) {
      root.error("args", fmt::format("nccl-tests binary \"{}\" has no collective record type", binary),
                 "supported: all_reduce, all_gather, reduce_scatter, alltoall, broadcast, reduce, "
                 "sendrecv");
    }
  }
  if (!kind && binary.empty()) kind = collective_hint;
  if (!kind && !diag.has_errors()) {
    root.error("args", "cannot tell which collective this file measures",
               "args[0] names the nccl-tests binary (e.g. \"./build/all_reduce_perf\"); or name the "
               "file after the collective");
  }
  if (const nlohmann::json* env = root.raw("env"); env && env->is_array()) {
    for (const auto& e : *env) {
      if (e.is_string()) collect_nccl_env(e.get<std::string>(), s.env);
    }
  }
  if (auto code = root.integer("nccl_version", 0, 100000000)) s.nccl = nccl_version_from_code(*code);
  s.tool = fmt::format("nccl-tests {}", binary.empty() ? "(binary not named)" : binary);

  JsonObjectReader config = root.object("config", true);
  auto nthreads = config.integer("nthreads", 1, 1 << 20).value_or(1);
  auto ngpus = config.integer("ngpus", 1, 1 << 20).value_or(1);
  s.warmup_iterations = config.integer("warmup_iters", 0, INT64_MAX);
  s.iterations = config.integer("iterations", 1, INT64_MAX);
  std::int64_t processes = 0;
  std::set<std::string> hosts;
  if (const nlohmann::json* devices = config.raw("devices"); devices && devices->is_array()) {
    for (std::size_t i = 0; i < devices->size(); ++i) {
      JsonObjectReader d(diag, file, json_pointer_append(config.pointer_of("devices"), i),
                         (*devices)[i]);
      if (!d.is_object()) continue;
      ++processes;
      if (auto host = d.string("hostname")) hosts.insert(*host);
      if (auto gpu = d.string("device_info"); gpu && s.gpu.empty()) s.gpu = *gpu;
    }
  }
  if (s.gpu.empty()) s.gpu = "unknown";
  if (processes == 0) {
    config.error("devices", "no devices listed", "nccl-tests lists one device per process");
  }
  const std::int64_t ranks = std::max<std::int64_t>(processes, 1) * nthreads * ngpus;
  const int nodes = static_cast<int>(std::max<std::size_t>(hosts.size(), 1));
  s.nodes = nodes;
  if (ranks % nodes == 0) s.gpus_per_node = ranks / nodes;

  const nlohmann::json* results = root.raw("results");
  if (!results || !results->is_array()) {
    root.error("results", results ? "expected an array" : "is required",
               "one entry per message size");
  }
  diag.throw_if_errors();

  struct Entry {
    std::string pointer;
    CollectiveRecord shape;
    Half half;
  };
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < results->size(); ++i) {
    JsonObjectReader r(diag, file, json_pointer_append("/results", i), (*results)[i]);
    if (!r.is_object()) continue;
    auto size = r.integer("size", 0, INT64_MAX);
    if (!size) {
      if (!r.has("size")) r.error("size", "is required", "bytes, nccl-tests' \"size\" column");
      continue;
    }
    std::string dtype = normalize_nccl_tests_dtype(r.string("type").value_or("unknown"));
    for (int h = 0; h < 2; ++h) {
      Half half = read_half(r, h, diag);
      if (!half.present || *size == 0) continue;
      std::string pointer = r.pointer_of(kHalves[h]);
      for (bool bus : {false, true}) {
        PrintedBandwidth p{static_cast<double>(*size), half.time_us, 0, bus ? half.busbw : half.algbw,
                           1e-6};
        if (auto mismatch = bandwidth_mismatch(*kind, static_cast<int>(ranks), bus, p)) {
          diag.error(file, json_pointer_append(pointer, bus ? "bus_bw" : "alg_bw"), *mismatch,
                     bandwidth_mismatch_hint());
        }
      }
      CollectiveRecord c;
      c.kind = *kind;
      c.ranks = static_cast<int>(ranks);
      c.nodes = std::min<int>(nodes, c.ranks);
      c.size_bytes = static_cast<double>(*size);
      c.dtype = dtype;
      c.in_place = h == 1;
      apply_pinned_nccl_env(s.env, c);
      entries.push_back({pointer, c, std::move(half)});
    }
  }
  if (entries.empty() && !diag.has_errors()) {
    root.error("results", "no result with a time", "nccl-tests -J writes one entry per size");
  }
  diag.throw_if_errors();

  bool per_iteration = std::all_of(entries.begin(), entries.end(),
                                   [](const Entry& e) { return !e.half.per_iteration_us.empty(); });
  if (per_iteration) {
    s.timer = "cuda_event";
    s.statistic = "sample";
  }
  RecordSet out;
  for (auto& e : entries) {
    MeasurementRecord rec;
    rec.source = s.id;
    rec.label = e.pointer;
    rec.shape = e.shape;
    if (per_iteration) {
      for (double us : e.half.per_iteration_us) rec.samples_s.push_back(us * 1e-6);
    } else {
      rec.samples_s = {e.half.time_us * 1e-6};
    }
    out.records.push_back(std::move(rec));
  }
  out.sources.push_back(std::move(s));
  return out;
}

}  // namespace clustersim
