#include "models/inputs/cluster_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

struct DtypeName {
  Dtype dtype;
  std::string_view name;
};
constexpr DtypeName kDtypes[] = {{Dtype::kFp64, "fp64"}, {Dtype::kFp32, "fp32"},
                                 {Dtype::kTf32, "tf32"}, {Dtype::kBf16, "bf16"},
                                 {Dtype::kFp16, "fp16"}, {Dtype::kFp8, "fp8"}};

// True when an error about the field at `pointer` of `file` was collected already.
bool already_reported(const Diagnostics& diag, const std::string& file, const std::string& pointer) {
  return std::any_of(diag.errors().begin(), diag.errors().end(),
                     [&](const InputError& e) { return e.file == file && e.pointer == pointer; });
}

// True when `pointer` names a number inside `value`, or an object (the source of every number
// in it, such as the "nccl" block).
bool names_a_number(const nlohmann::json& value, const std::string& pointer) {
  try {
    const nlohmann::json& v = value.at(nlohmann::json::json_pointer(pointer));
    return v.is_number() || v.is_object();
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

std::string to_string(Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return std::string(d.name);
  }
  return "?";
}

double bytes_per_element(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFp64:
      return 8;
    case Dtype::kFp32:
    case Dtype::kTf32:
      return 4;
    case Dtype::kBf16:
    case Dtype::kFp16:
      return 2;
    case Dtype::kFp8:
      return 1;
  }
  return 2;
}

std::optional<Dtype> dtype_from_string(std::string_view name) {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::optional<double> GpuSpec::peak_flops_per_s(Dtype dtype) const {
  auto it = peak_dense_flops_per_s.find(dtype);
  if (it == peak_dense_flops_per_s.end()) return std::nullopt;
  return it->second;
}

ClusterSpec load_cluster_spec(const std::string& source, const std::string& display_name,
                              Diagnostics& diag) {
  JsonDocument doc = read_json_document(source, "--cluster");
  ClusterSpec c;
  c.source = doc.file;
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  c.name = r.string("name").value_or(
      display_name.empty() ? std::filesystem::path(doc.file).stem().string() : display_name);
  c.description = r.string("description").value_or("");

  JsonObjectReader gpu = r.object("gpu", true);
  c.gpu.name = gpu.required_string("name").value_or("");
  c.gpu.sm_count = gpu.required_integer("sm_count", 1, 100000).value_or(0);
  c.gpu.hbm_bytes = gpu.required_integer("hbm_bytes", 1, INT64_MAX).value_or(0);
  c.gpu.hbm_bandwidth_bytes_per_s = gpu.required_positive_number("hbm_bandwidth_bytes_per_s").value_or(0);
  JsonObjectReader peaks = gpu.object("peak_dense_flops_per_s", true);
  for (const auto& d : kDtypes) {
    if (auto v = peaks.positive_number(d.name)) c.gpu.peak_dense_flops_per_s[d.dtype] = *v;
  }
  if (peaks.is_object() && !c.gpu.peak_dense_flops_per_s.count(Dtype::kBf16) &&
      !c.gpu.peak_dense_flops_per_s.count(Dtype::kFp16)) {
    diag.error(doc.file, peaks.pointer(), "needs a bf16 or fp16 peak",
               "MFU is measured against the dense 16-bit peak");
  }
  peaks.reject_unknown_keys();
  gpu.reject_unknown_keys();

  JsonObjectReader node = r.object("node", true);
  c.node.gpus_per_node = node.required_integer("gpus_per_node", 1, 1024).value_or(0);
  c.node.nvlink_bandwidth_bytes_per_s =
      node.required_positive_number("nvlink_bandwidth_bytes_per_s").value_or(0);
  c.node.nvlink_latency_s = node.required_positive_number("nvlink_latency_s").value_or(0);
  c.node.nics_per_node = node.required_integer("nics_per_node", 1, 1024).value_or(0);
  c.node.nic_bandwidth_bytes_per_s =
      node.required_positive_number("nic_bandwidth_bytes_per_s").value_or(0);
  c.node.nic_latency_s = node.required_positive_number("nic_latency_s").value_or(0);
  node.reject_unknown_keys();

  JsonObjectReader fabric = r.object("fabric", true);
  c.fabric.topology = fabric.required_choice("topology", {"rail_optimized_fat_tree"},
                                             "\"rail_optimized_fat_tree\"")
                          .value_or("");
  c.fabric.nodes_per_leaf = fabric.required_integer("nodes_per_leaf", 1, 1 << 20).value_or(0);
  c.fabric.leaf_oversubscription =
      fabric.required_number("leaf_oversubscription", 1.0, 1024.0, "1.0 for non-blocking")
          .value_or(1.0);
  c.fabric.spine_oversubscription =
      fabric.required_number("spine_oversubscription", 1.0, 1024.0, "1.0 for non-blocking")
          .value_or(1.0);
  c.fabric.switch_latency_s = fabric.required_positive_number("switch_latency_s").value_or(0);
  c.fabric.routing = fabric.choice("routing", {"adaptive", "ecmp"}).value_or("adaptive");
  if (c.fabric.routing == "ecmp") {
    c.fabric.uplinks_per_leaf = fabric.required_integer("uplinks_per_leaf", 1, 1 << 16).value_or(1);
    c.fabric.flows_per_peer = fabric.required_integer("flows_per_peer", 1, 64).value_or(1);
  } else {
    for (const char* key : {"uplinks_per_leaf", "flows_per_peer"}) {
      if (fabric.raw(key) != nullptr) fabric.error(key, "applies only to \"routing\": \"ecmp\"", "remove it, or set routing to ecmp");
    }
  }
  fabric.reject_unknown_keys();

  if (r.has("nccl")) {
    JsonObjectReader nccl = r.object("nccl", false);
    if (nccl.is_object()) c.nccl = read_nccl_graph_spec(nccl);
  }

  if (const nlohmann::json* raw = r.raw("sources"); raw && raw->is_object()) {
    for (const auto& [pointer, text] : raw->items()) {
      std::string where = json_pointer_append(r.pointer_of("sources"), pointer);
      if (!text.is_string()) {
        diag.error(doc.file, where, fmt::format("expected a string, got {}", describe_json_value(text)),
                   "where the number comes from: document, table, URL");
      } else if (already_reported(diag, doc.file, pointer)) {
        // The field it cites is missing or bad, and that is reported already: one error, not two.
      } else if (!names_a_number(doc.value, pointer)) {
        diag.error(doc.file, where, fmt::format("\"{}\" does not name a number or an object of numbers", pointer),
                   "keys of sources are JSON pointers to a number or an object, such as \"/gpu/sm_count\"");
      } else {
        c.sources[pointer] = text.get<std::string>();
      }
    }
  }
  if (auto fleet = r.string("fleet")) {
    // A fleet that cannot be read is this file's error, at /fleet.
    try {
      Diagnostics fleet_diag;
      c.fleet = load_fleet_spec(*fleet, doc.file + ":/fleet", fleet_diag);
    } catch (const InputErrors& e) {
      for (const InputError& err : e.errors()) {
        if (err.file == doc.file + ":/fleet") {
          diag.error(doc.file, r.pointer_of("fleet"), err.message, err.hint);
        } else {
          diag.error(err.file, err.pointer, err.message, err.hint);
        }
      }
    }
  }
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return c;
}

}  // namespace clustersim
