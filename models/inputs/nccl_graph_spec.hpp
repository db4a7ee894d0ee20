#pragma once
// What NCCL's topology search leaves for its tuner on one kind of node: channels and per-channel
// bandwidths per algorithm graph, on one node and across nodes (the cluster file's "nccl" key;
// docs/cluster-format.md, docs/nccl-tuning-model.md §4). Values are for full nodes.
namespace clustersim {

class JsonObjectReader;

struct NcclGraph {
  int channels = 0;            // the search's channels (graph->nChannels)
  double bw_intra_GBps = 0;    // per channel, GB/s (1 GB/s = 1e9 B/s)
  double bw_inter_GBps = 0;
};

struct NcclGraphs {
  NcclGraph ring;
  NcclGraph tree;
  NcclGraph nvls;           // channels 0: no NVLS graph
  int comm_channels = 0;    // comm->nChannels after ncclTopoPostset (the runtime channels)
  int nvls_channels = 0;    // comm->nvlsChannels
};

struct NcclGraphSpec {
  int compute_capability = 0;  // 80 for A100, 90 for H100/H200
  bool amd_cpu = false;        // the CPU vendor selects the netOverhead and the LL cap row
  bool nvls = false;           // NVLink SHARP (NVSwitch multicast) enabled
  NcclGraphs single_node;
  NcclGraphs multi_node;
};

// Reads the "nccl" object of a cluster file; errors go to the reader's diagnostics.
NcclGraphSpec read_nccl_graph_spec(JsonObjectReader& nccl);

}  // namespace clustersim
