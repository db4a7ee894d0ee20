#include "models/inputs/nccl_graph_spec.hpp"

#include "models/inputs/json_reader.hpp"

namespace clustersim {

namespace {

NcclGraph read_graph(JsonObjectReader& parent, const char* key, bool required) {
  NcclGraph g;
  JsonObjectReader r = parent.object(key, required);
  if (!r.is_object()) return g;
  g.channels = static_cast<int>(r.required_integer("channels", 0, 64).value_or(0));
  g.bw_intra_GBps = r.required_number("bw_intra_GBps", 0, 1e4, "GB/s per channel inside a node").value_or(0);
  g.bw_inter_GBps = r.required_number("bw_inter_GBps", 0, 1e4, "GB/s per channel between nodes").value_or(0);
  r.reject_unknown_keys();
  return g;
}

NcclGraphs read_graphs(JsonObjectReader& parent, const char* key) {
  NcclGraphs g;
  JsonObjectReader r = parent.object(key, true);
  if (!r.is_object()) return g;
  g.ring = read_graph(r, "ring", true);
  g.tree = read_graph(r, "tree", true);
  g.nvls = read_graph(r, "nvls", false);
  g.comm_channels = static_cast<int>(r.required_integer("comm_channels", 1, 64).value_or(1));
  g.nvls_channels = static_cast<int>(r.integer("nvls_channels", 0, 64).value_or(0));
  r.reject_unknown_keys();
  return g;
}

}  // namespace

NcclGraphSpec read_nccl_graph_spec(JsonObjectReader& nccl) {
  NcclGraphSpec s;
  s.compute_capability = static_cast<int>(nccl.required_integer("compute_capability", 70, 200).value_or(0));
  s.amd_cpu = nccl.required_choice("cpu", {"intel", "amd", "other"}, "the host CPU vendor: intel, amd or other")
                  .value_or("intel") == "amd";
  s.nvls = nccl.boolean("nvls").value_or(false);
  s.single_node = read_graphs(nccl, "single_node");
  s.multi_node = read_graphs(nccl, "multi_node");
  nccl.reject_unknown_keys();
  return s;
}

}  // namespace clustersim
