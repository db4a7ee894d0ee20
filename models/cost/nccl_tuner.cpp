#include "models/cost/nccl_tuner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace clustersim {

namespace {

constexpr int kTree = 0, kRing = 1, kCollNetDirect = 2, kCollNetChain = 3, kNvls = 4, kNvlsTree = 5, kPat = 6;
constexpr int kLl = 0, kLl128 = 1, kSimple = 2;
constexpr int kHwNvlink = 0, kHwNet = 2;

// configs/measurements/nccl-tuning.json (tuning.cc at v2.30.7); nccl_tuner_test checks each.
constexpr NcclConstants kConstants = {
    {{6.8, 14.0, 8.4}, {6.6, 14.0, 8.4}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {8.0, 8.0, 8.0}},
    {
        {{0.6, 1.25, 4.0}, {0.6, 1.9, 3.4}, {0, 0, 3.7}, {0, 0, 2.8}, {0, 0, 25}, {0, 0, 25}, {0, 0, 4.0}},
        {{1.0, 1.9, 4.0}, {1.0, 2.5, 5.7}, {0, 0, 3.7}, {0, 0, 2.8}, {0, 0, 0}, {0, 0, 0}, {0, 0, 4.0}},
        {{5.0, 8.5, 14}, {2.7, 4.0, 14.0}, {0, 0, 31}, {0, 0, 30}, {0, 0, 18}, {0, 0, 20.9}, {0, 0, 14}},
    },
    {{39.0, 39.0, 20.4}, {87.7, 22.5, 19.0}, {141.0, 45.0, 35.0}, {282.0, 90.0, 70.0}},
    {{20.0, 20.0, 20.0}, {20.0, 20.0, 20.0}, {36.7, 36.7, 36.7}, {40.0, 40.0, 40.0}},
    {{20.0, 20.0, 20.0}, {20.0, 20.0, 20.0}, {36.7, 36.7, 29.0}, {55.6, 31.67, 20.0}},
    {{26.5, 18.5, 10.0}, {24.0, 23.6, 17.8}, {38.7, 41.4, 36.0}, {70.0, 42.8, 24.0}},
    {{26.5, 18.5, 10.0}, {24.0, 23.6, 17.8}, {0.0, 57.7, 45.5}, {0.0, 96.0, 80.0}},
    {0.0, 0.0, 0.85, 0.74},
    {
        {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0},
        {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0, 1.0},
        {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9},
    },
};
const NcclConstants& K = kConstants;
constexpr int kThreadThreshold[3] = {8, 8, 64};    // LL (x nRanks for Ring), LL128, Simple
constexpr int kMaxThreads[3] = {512, 640, 512};
constexpr double kPciBwGBps = 12.0;

int log2i(std::int64_t n) {
  int r = -1;
  while (n > 0) {
    n >>= 1;
    ++r;
  }
  return r;
}

int compcap_index(int cc) { return cc >= 100 ? 3 : cc >= 90 ? 2 : cc >= 80 ? 1 : 0; }

struct Tuned {
  double bw_GBps[7][3] = {};
  double lat_us[7][3] = {};
};

const NcclGraph& graph_of(const NcclGraphs& g, int a) {
  static const NcclGraph none;
  switch (a) {
    case kTree:
    case kPat: return g.tree;  // init.cc: graphs[] = {tree, ring, collNetDirect, collNetChain, nvls, nvls, tree}
    case kRing: return g.ring;
    case kNvls:
    case kNvlsTree: return g.nvls;
    default: return none;
  }
}

bool nvls_support(const NcclCommunicator& c) {
  const NcclGraphs& g = c.nodes == 1 ? c.spec.single_node : c.spec.multi_node;
  return c.spec.nvls && c.spec.compute_capability >= 90 && g.nvls.channels > 0;
}

// ncclTopoTuneModel for one collective (docs/nccl-tuning-model.md §2).
Tuned tune(const NcclCommunicator& c, NcclCollective coll) {
  Tuned t;
  const NcclGraphs& graphs = c.nodes == 1 ? c.spec.single_node : c.spec.multi_node;
  const int cci = compcap_index(c.spec.compute_capability);
  const int nodes = c.nodes, ranks = c.nodes * c.ranks_per_node;
  const int index2 = nodes <= 2 ? nodes - 1 : 2;
  const int index1 = nodes == 1 ? cci : (c.spec.amd_cpu ? 1 : 0);
  const double ppn = static_cast<double>(ranks) / nodes;
  const bool all_reduce = coll == NcclCollective::kAllReduce;
  const int nsteps = all_reduce ? 2 * (ranks - 1) : ranks - 1;
  const bool nvls_ok = nvls_support(c);
  for (int a = 0; a < kNcclAlgorithms; ++a) {
    if (!all_reduce && a != kPat && a != kRing && a != kNvls && a != kCollNetDirect) continue;
    if (all_reduce && a == kPat) continue;
    for (int p = 0; p < kNcclProtocols; ++p) {
      if ((a == kNvls || a == kNvlsTree || a == kPat) && p != kSimple) continue;
      if (a == kPat && nodes != ranks) continue;
      const NcclGraph& g = graph_of(graphs, a);
      const bool collnet = a == kCollNetDirect || a == kCollNetChain;
      double bw = (nodes <= 2 || collnet) ? g.bw_intra_GBps : g.bw_inter_GBps;
      if (a == kNvls || a == kNvlsTree) {
        if (g.channels < 2) continue;
        double intra = g.bw_intra_GBps * K.nvls_efficiency[cci] * (g.channels - 1) / g.channels;
        intra *= all_reduce ? 2.0 : (ppn - 1) / ppn;
        double inter = g.bw_inter_GBps * ((nodes <= 2 && a == kNvlsTree) ? 2 : 1);
        bw = std::min(intra, inter);
        if (a == kNvlsTree) bw = std::min(bw, K.per_channel_max_nvls_tree_bw_GBps[cci][index2]);
      }
      double bus = g.channels * bw;
      if (a == kRing && p == kLl) bus = std::min(K.ll_max_bw_GBps[index1][index2], bus * .5);
      if (a == kRing && p == kLl128) bus = std::min(bus * 0.92, g.channels * K.per_channel_max_ring_ll128_bw_GBps[cci][index2]);
      if (a == kTree && all_reduce) bus = std::min(bus * .92, g.channels * K.per_channel_max_tree_bw_GBps[cci][index2]);
      if (a == kTree && p == kLl) bus = std::min(bus / 3.8, K.ll_max_bw_GBps[index1][index2]);
      if (a == kTree && p == kLl128) {
        bus = std::min(bus * (nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0), g.channels * K.per_channel_max_tree_ll128_bw_GBps[cci][index2]);
      }
      if (a == kPat) bus *= .75;
      if (collnet) bus = 0;  // CollNet (SHARP) is not modelled
      if (a == kNvls && !all_reduce && nodes > 1) bus = 0;
      if (!(a != kRing && !all_reduce)) bus *= (a == kRing || a == kNvls || a == kNvlsTree) ? static_cast<double>(ranks) / nsteps : .5;

      double lat = K.base_latency_us[a][p];
      double intra_lat = K.hw_latency_us[kHwNvlink][a][p];
      const double inter_lat = K.hw_latency_us[kHwNet][ppn == 1 ? kTree : a][p];  // latencyInter: 0 on InfiniBand
      if (a == kRing) {
        const double net_overhead = nodes > 1 ? (c.spec.amd_cpu ? 2.0 : 1.0) * (p == kSimple ? 3 : 1) : 0.0;
        intra_lat = std::max(intra_lat, net_overhead);
        const int inter_steps = nodes == 1 ? 0 : (all_reduce ? 2 * (nodes - 1) : nodes - 1);
        lat += (nsteps - inter_steps) * intra_lat + inter_steps * inter_lat;
      } else if (a == kTree) {
        if (all_reduce) lat += 2 * ((ranks / nodes - 1) * intra_lat + log2i(nodes) * inter_lat);
      } else if (a == kNvls) {
        lat = intra_lat + (nodes > 1 ? inter_lat : 0.0);
      } else if (a == kNvlsTree) {
        lat += intra_lat + 2 * log2i(nodes) * inter_lat;
      } else if (a == kPat) {
        lat += log2i(nodes) * (inter_lat / 3.5) + ranks * 2.8;
      }
      bool enabled = true;
      if (a == kNvlsTree && nodes == 1) enabled = false;
      if (collnet || (a == kNvls && nodes > 1)) enabled = false;
      if ((a == kNvls || a == kNvlsTree) && !nvls_ok) enabled = false;
      t.bw_GBps[a][p] = enabled ? bus : 0.0;
      t.lat_us[a][p] = lat;
    }
  }
  return t;
}

// ncclTopoGetAlgoTime (§3), one collective.
double algo_time_us(const NcclCommunicator& c, const Tuned& t, NcclCollective coll, int a, int p, double bytes) {
  double bw = t.bw_GBps[a][p], lat = t.lat_us[a][p];
  if (bw == 0) return -1.0;
  const auto n = static_cast<std::int64_t>(bytes);
  const int log_size = log2i(n >> 6);
  const bool all_reduce = coll == NcclCollective::kAllReduce;
  if (a == kTree && all_reduce && log_size >= 0 && log_size < 23) bw *= K.tree_correction_factor[p][log_size];
  const NcclGraphs& graphs = c.nodes == 1 ? c.spec.single_node : c.spec.multi_node;
  const std::int64_t ranks = static_cast<std::int64_t>(c.nodes) * c.ranks_per_node;
  if (a == kRing && p == kSimple && c.nodes > 1 && all_reduce && n / (graphs.comm_channels * ranks) >= 64) {
    lat *= c.spec.compute_capability < 80 ? 1.9 : 1.4;  // the ring plateau
  }
  return lat + bytes / (1000 * bw);
}

int exec_channels(const NcclCommunicator& c, int a, int p, double bytes) {
  const NcclGraphs& graphs = c.nodes == 1 ? c.spec.single_node : c.spec.multi_node;
  if (a == kNvls || a == kNvlsTree) {
    return (c.nodes > 1 && a == kNvls) ? std::min(graphs.nvls_channels, graphs.comm_channels) : graphs.nvls_channels;
  }
  int nc = graphs.comm_channels;
  int threads = kMaxThreads[p];
  if (p == kSimple && a == kRing && graphs.ring.bw_intra_GBps * graphs.ring.channels <= kPciBwGBps) threads = 256;
  const double threshold = kThreadThreshold[p] * ((p == kLl && a == kRing) ? c.nodes * c.ranks_per_node : 1);
  while (bytes < nc * threads * threshold && nc >= 2) --nc;
  return nc;
}

}  // namespace

const NcclConstants& nccl_constants() { return kConstants; }

const char* to_string(NcclAlgorithm a) {
  static const char* names[] = {"Tree", "Ring", "CollNetDirect", "CollNetChain", "NVLS", "NVLSTree", "PAT"};
  return names[static_cast<int>(a)];
}

const char* to_string(NcclProtocol p) {
  static const char* names[] = {"LL", "LL128", "Simple"};
  return names[static_cast<int>(p)];
}

NcclCandidateTimes nccl_candidate_times_us(const NcclCommunicator& comm, NcclCollective coll, double bytes) {
  NcclCandidateTimes out;
  const Tuned t = tune(comm, coll);
  for (int a = 0; a < kNcclAlgorithms; ++a) {
    for (int p = 0; p < kNcclProtocols; ++p) out[a][p] = algo_time_us(comm, t, coll, a, p, bytes);
  }
  return out;
}

NcclChoice nccl_choose(const NcclCommunicator& comm, NcclCollective coll, double bytes) {
  const NcclCandidateTimes times = nccl_candidate_times_us(comm, coll, bytes);
  NcclChoice best;
  best.time_us = std::numeric_limits<double>::infinity();
  for (int a = 0; a < kNcclAlgorithms; ++a) {
    for (int p = 0; p < kNcclProtocols; ++p) {
      if (times[a][p] >= 0 && times[a][p] < best.time_us) {
        best.algorithm = static_cast<NcclAlgorithm>(a);
        best.protocol = static_cast<NcclProtocol>(p);
        best.time_us = times[a][p];
      }
    }
  }
  best.exec_channels = exec_channels(comm, static_cast<int>(best.algorithm), static_cast<int>(best.protocol), bytes);
  return best;
}

NcclGraphSpec nccl_graphs_for_ranks(const NcclGraphSpec& full_node, int ranks_per_node, int gpus_per_node) {
  NcclGraphSpec s = full_node;
  if (ranks_per_node >= gpus_per_node || gpus_per_node <= 0) return s;
  auto scale = [&](int channels) { return std::max(1, channels * ranks_per_node / gpus_per_node); };
  s.multi_node.ring.channels = scale(s.multi_node.ring.channels);
  s.multi_node.tree.channels = scale(s.multi_node.tree.channels);
  s.multi_node.comm_channels = scale(s.multi_node.comm_channels);
  // NVLS needs the whole NVSwitch domain's multicast; a partial node keeps it only with >= 2 channels.
  s.multi_node.nvls.channels = s.multi_node.nvls.channels * ranks_per_node / gpus_per_node;
  return s;
}

}  // namespace clustersim
