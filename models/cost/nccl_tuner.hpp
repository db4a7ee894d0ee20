#pragma once
// NCCL's own cost model, as its tuner uses it to pick an algorithm and a protocol for a
// collective (ncclTopoTuneModel, ncclTopoGetAlgoTime, topoGetAlgoInfo of NCCL v2.30.7). The
// specification, its sources and the derived test table: docs/nccl-tuning-model.md; the
// constants are those of configs/measurements/nccl-tuning.json (a test checks they match).
// Left out: CollNet/SHARP (off), the fp8 rule, aggregated operations (one collective).
#include <array>

#include "models/inputs/nccl_graph_spec.hpp"

namespace clustersim {

enum class NcclAlgorithm { kTree, kRing, kCollNetDirect, kCollNetChain, kNvls, kNvlsTree, kPat };
enum class NcclProtocol { kLl, kLl128, kSimple };
enum class NcclCollective { kAllReduce, kReduceScatter, kAllGather };

inline constexpr int kNcclAlgorithms = 7;
inline constexpr int kNcclProtocols = 3;
const char* to_string(NcclAlgorithm a);  // "Tree", "Ring", ... as NCCL prints them
const char* to_string(NcclProtocol p);   // "LL", "LL128", "Simple"

// The tuner's tables (tuning.cc at v2.30.7), as configs/measurements/nccl-tuning.json gives them.
// Rows of the [4] tables: compute capability Volta, Ampere, Hopper, Blackwell (ll_max_bw: on
// several nodes row 0 is an Intel/other CPU, row 1 AMD); columns: 1, 2, more than 2 nodes.
struct NcclConstants {
  double base_latency_us[kNcclAlgorithms][kNcclProtocols];
  double hw_latency_us[3][kNcclAlgorithms][kNcclProtocols];  // [NVLINK, PCI, NET]
  double ll_max_bw_GBps[4][3];
  double per_channel_max_ring_ll128_bw_GBps[4][3];
  double per_channel_max_tree_ll128_bw_GBps[4][3];
  double per_channel_max_tree_bw_GBps[4][3];
  double per_channel_max_nvls_tree_bw_GBps[4][3];
  double nvls_efficiency[4];
  double tree_correction_factor[kNcclProtocols][24];  // by log2(nBytes / 64)
};
const NcclConstants& nccl_constants();

// One communicator: `nodes` nodes with `ranks_per_node` ranks each, on nodes described by `spec`.
struct NcclCommunicator {
  NcclGraphSpec spec;
  int nodes = 1;
  int ranks_per_node = 8;
};

struct NcclChoice {
  NcclAlgorithm algorithm = NcclAlgorithm::kRing;
  NcclProtocol protocol = NcclProtocol::kSimple;
  double time_us = 0;
  int exec_channels = 0;  // the channels the kernel launches with (does not change the time)
};

// Every candidate's predicted time in µs, [algorithm][protocol]; negative when not a candidate.
// `bytes` is NCCL's nBytes: the whole buffer (the gathered or scattered one for AG/RS).
using NcclCandidateTimes = std::array<std::array<double, kNcclProtocols>, kNcclAlgorithms>;
NcclCandidateTimes nccl_candidate_times_us(const NcclCommunicator& comm, NcclCollective coll, double bytes);

// The candidate NCCL picks (smallest time, ties to the lower algorithm then protocol index).
NcclChoice nccl_choose(const NcclCommunicator& comm, NcclCollective coll, double bytes);

// The graphs of a communicator that holds `ranks_per_node` of a node's `gpus_per_node` GPUs,
// each GPU with its own NIC (rail-aligned): across nodes, one search channel per NIC the
// communicator's GPUs own (the full node's channels scaled by ranks_per_node / gpus_per_node,
// at least one); on one node the NVLink graphs are per GPU and do not change. An assumption
// (docs/nccl-tuning-model.md §4), not a transcription of NCCL's search.
NcclGraphSpec nccl_graphs_for_ranks(const NcclGraphSpec& full_node, int ranks_per_node, int gpus_per_node);

}  // namespace clustersim
