// The NCCL tuner port against the table derived from NCCL v2.30.7's model
// (configs/measurements/nccl-tuning.json, docs/nccl-tuning-model.md §5), and its constants and
// the shipped clusters' graphs against that file.
#include "models/cost/nccl_tuner.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/preset_path.hpp"

namespace clustersim {
namespace {

const nlohmann::json& tuning() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(CLUSTERSIM_SOURCE_DIR) + "/configs/measurements/nccl-tuning.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

NcclGraph graph(const nlohmann::json& g) {
  return {g.at("nChannels").get<int>(), g.at("bwIntra").get<double>(), g.at("bwInter").get<double>()};
}

NcclGraphs graphs(const nlohmann::json& regime) {
  NcclGraphs g;
  g.ring = graph(regime.at("ring"));
  g.tree = graph(regime.at("tree"));
  if (regime.contains("nvls")) g.nvls = graph(regime.at("nvls"));
  g.comm_channels = regime.at("comm_nChannels").get<int>();
  g.nvls_channels = regime.value("nvlsChannels", 0);
  return g;
}

// The graph inputs the derived cases were computed with (the file's "systems").
NcclGraphSpec system_spec(const std::string& name, bool nvls) {
  const nlohmann::json& s = tuning().at("systems").at(name);
  NcclGraphSpec spec;
  spec.compute_capability = name == "dgx-h100" ? 90 : 80;
  spec.amd_cpu = s.at("cpu").get<std::string>().rfind("AMD", 0) == 0;
  spec.nvls = nvls;
  spec.single_node = graphs(s.at("single_node"));
  spec.multi_node = graphs(s.at("multi_node"));
  return spec;
}

NcclCollective collective(const std::string& name) {
  if (name == "AllReduce") return NcclCollective::kAllReduce;
  if (name == "ReduceScatter") return NcclCollective::kReduceScatter;
  return NcclCollective::kAllGather;
}

TEST(NcclTuner, ChoosesAsTheDerivedTable) {
  const nlohmann::json& cases = tuning().at("derived_cases").at("cases");
  ASSERT_EQ(cases.size(), 64u);
  for (const auto& c : cases) {
    NcclCommunicator comm{system_spec(c.at("system"), c.at("nvls")), c.at("nNodes"), c.at("gpus_per_node")};
    const NcclCollective coll = collective(c.at("collective"));
    const double bytes = c.at("bytes").get<double>();
    const NcclChoice got = nccl_choose(comm, coll, bytes);
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(std::string(to_string(got.algorithm)), c.at("algorithm").get<std::string>());
    EXPECT_EQ(std::string(to_string(got.protocol)), c.at("protocol").get<std::string>());
    EXPECT_NEAR(got.time_us, c.at("time_us").get<double>(), 1e-4 * c.at("time_us").get<double>());
    EXPECT_EQ(got.exec_channels, c.at("exec_channels").get<int>());
    // Every candidate the table lists, and no other.
    const NcclCandidateTimes times = nccl_candidate_times_us(comm, coll, bytes);
    int listed = 0;
    for (int a = 0; a < kNcclAlgorithms; ++a) {
      for (int p = 0; p < kNcclProtocols; ++p) {
        if (times[a][p] < 0) continue;
        ++listed;
        std::string key = std::string(to_string(static_cast<NcclAlgorithm>(a))) + "/" +
                          to_string(static_cast<NcclProtocol>(p));
        ASSERT_TRUE(c.at("candidates_us").contains(key)) << key;
        EXPECT_NEAR(times[a][p], c.at("candidates_us").at(key).get<double>(), 2e-3 + 1e-4 * times[a][p]) << key;
      }
    }
    EXPECT_EQ(listed, static_cast<int>(c.at("candidates_us").size()));
  }
}

TEST(NcclTuner, RingLatencyGrowsWithRanksAndTreeTakesOverAtScale) {
  const NcclGraphSpec h100 = system_spec("dgx-h100", false);
  const double bytes = 64.0 * (1 << 20);
  NcclCommunicator small{h100, 4, 8}, large{h100, 192, 8};
  auto ring_simple = [&](const NcclCommunicator& c) {
    return nccl_candidate_times_us(c, NcclCollective::kReduceScatter, bytes)[1][2];
  };
  // Ring latency: 1,344 NVLink steps at 3 us and 191 network steps at 14 us on 192 nodes.
  EXPECT_GT(ring_simple(large) - ring_simple(small), 0.9 * (1344 * 3.0 + 191 * 14.0 - (28 * 3.0 + 3 * 14.0)));
  EXPECT_EQ(nccl_choose(NcclCommunicator{h100, 128, 8}, NcclCollective::kAllReduce, 1 << 30).algorithm,
            NcclAlgorithm::kTree);
}

TEST(NcclTuner, PartialNodesScaleTheNetworkChannels) {
  const NcclGraphSpec h100 = system_spec("dgx-h100", true);
  const NcclGraphSpec one = nccl_graphs_for_ranks(h100, 1, 8);
  EXPECT_EQ(one.multi_node.ring.channels, 1);
  EXPECT_EQ(one.multi_node.comm_channels, 2);
  EXPECT_EQ(one.single_node.ring.channels, h100.single_node.ring.channels);
  // One GPU per node: PAT is a candidate for ReduceScatter; NVLS is not (one channel).
  const NcclCandidateTimes t = nccl_candidate_times_us(NcclCommunicator{one, 64, 1}, NcclCollective::kReduceScatter, 1e8);
  EXPECT_GE(t[6][2], 0);
  EXPECT_LT(nccl_candidate_times_us(NcclCommunicator{one, 64, 1}, NcclCollective::kAllReduce, 1e8)[5][2], 0);
  EXPECT_EQ(nccl_graphs_for_ranks(h100, 8, 8).multi_node.ring.channels, 8);
}

// The C++ constants are the cited file's.
TEST(NcclTuner, ConstantsMatchTheMeasurementsFile) {
  const nlohmann::json& j = tuning();
  const char* algos[] = {"Tree", "Ring", "CollNetDirect", "CollNetChain", "NVLS", "NVLSTree", "PAT"};
  const char* protos[] = {"LL", "LL128", "Simple"};
  const NcclConstants& k = nccl_constants();
  for (int a = 0; a < 7; ++a) {
    for (int p = 0; p < 3; ++p) {
      EXPECT_DOUBLE_EQ(k.base_latency_us[a][p],
                       j.at("base_latency_us").at("values").at(algos[a]).at(protos[p]).get<double>());
      const char* hw[] = {"NVLINK", "PCI", "NET"};
      for (int h = 0; h < 3; ++h) {
        EXPECT_DOUBLE_EQ(k.hw_latency_us[h][a][p],
                         j.at("hw_latency_us").at("values").at(hw[h]).at(algos[a]).at(protos[p]).get<double>());
      }
    }
  }
  const std::pair<const char*, const double (*)[3]> tables[] = {
      {"ll_max_bw_GBps", k.ll_max_bw_GBps},
      {"per_channel_max_ring_ll128_bw_GBps", k.per_channel_max_ring_ll128_bw_GBps},
      {"per_channel_max_tree_ll128_bw_GBps", k.per_channel_max_tree_ll128_bw_GBps},
      {"per_channel_max_tree_bw_GBps", k.per_channel_max_tree_bw_GBps},
      {"per_channel_max_nvls_tree_bw_GBps", k.per_channel_max_nvls_tree_bw_GBps}};
  for (const auto& [table, values] : tables) {
    for (int r = 0; r < 4; ++r) {
      for (int col = 0; col < 3; ++col) {
        EXPECT_DOUBLE_EQ(values[r][col], j.at(table).at("values").at(r).at(col).get<double>()) << table;
      }
    }
  }
  const char* ccs[] = {"Volta", "Ampere", "Hopper", "Blackwell"};
  for (int r = 0; r < 4; ++r) {
    EXPECT_DOUBLE_EQ(k.nvls_efficiency[r], j.at("nvls_efficiency").at("values").at(ccs[r]).get<double>());
  }
  const auto& tc = j.at("time_rule").at("tree_correction_factor").at("values");
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < 24; ++i) {
      EXPECT_DOUBLE_EQ(k.tree_correction_factor[p][i], tc.at(p).at(i).get<double>());
    }
  }
}

// The shipped clusters carry the file's graphs.
TEST(NcclTuner, ShippedClustersCarryTheFilesGraphs) {
  const std::pair<const char*, const char*> clusters[] = {
      {"h100-ndr", "dgx-h100"}, {"h200-ndr", "dgx-h100"}, {"a100-hdr", "dgx-a100"}};
  for (const auto& [cluster, system] : clusters) {
    Diagnostics diag;
    const ClusterSpec c = load_cluster_spec(config_dir() + "/clusters/" + cluster + ".json", cluster, diag);
    ASSERT_TRUE(c.nccl.has_value()) << cluster;
    const NcclGraphSpec want = system_spec(system, c.nccl->nvls);
    for (const auto& [got, expect] : {std::pair{c.nccl->single_node, want.single_node}, std::pair{c.nccl->multi_node, want.multi_node}}) {
      EXPECT_EQ(got.ring.channels, expect.ring.channels) << cluster;
      EXPECT_EQ(got.ring.bw_inter_GBps, expect.ring.bw_inter_GBps) << cluster;
      EXPECT_EQ(got.tree.channels, expect.tree.channels) << cluster;
      EXPECT_EQ(got.nvls.channels, expect.nvls.channels) << cluster;
      EXPECT_EQ(got.comm_channels, expect.comm_channels) << cluster;
    }
    EXPECT_EQ(c.nccl->amd_cpu, want.amd_cpu) << cluster;
  }
}

}  // namespace
}  // namespace clustersim
