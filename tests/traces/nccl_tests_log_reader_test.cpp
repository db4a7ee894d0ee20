#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "models/inputs/input_error.hpp"
#include "traces/measurement_import.hpp"
#include "traces/nccl_tests_common.hpp"
#include "traces/nccl_tests_log_reader.hpp"

namespace clustersim {
namespace {

const std::string kDir = std::string(CLUSTERSIM_TEST_DATA_DIR) + "/nccl_tests/";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const CollectiveRecord& collective(const MeasurementRecord& r) {
  return std::get<CollectiveRecord>(r.shape);
}

std::string error_of(const std::string& text, const NcclTestsLogHints& hints = {}) {
  try {
    read_nccl_tests_log(text, "t.log", hints);
  } catch (const InputErrors& e) {
    return e.what();
  }
  return "no error";
}

TEST(NcclTestsLog, NewFormatWithWrongAndRoot) {
  // https://github.com/tinygrad/open-gpu-kernel-modules/issues/36
  RecordSet set = import_measurement_file(kDir + "all_reduce_rtx4090_new_format.log");
  ASSERT_EQ(set.sources.size(), 1u);
  const RecordSource& s = set.sources[0];
  EXPECT_EQ(s.id, "all_reduce_rtx4090_new_format");
  EXPECT_EQ(s.kind, "nccl-tests");
  EXPECT_EQ(s.gpu, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(s.nodes, 1);
  EXPECT_EQ(s.gpus_per_node, 4);
  EXPECT_EQ(s.warmup_iterations, 5);
  EXPECT_EQ(s.iterations, 20);
  EXPECT_EQ(s.timer, "host_wall");
  EXPECT_EQ(s.statistic, "mean");
  ASSERT_EQ(set.records.size(), 6u);  // 3 rows x (out-of-place, in-place)
  const auto& first = collective(set.records[0]);
  EXPECT_EQ(first.kind, CollectiveKind::kAllReduce);
  EXPECT_EQ(first.ranks, 4);
  EXPECT_EQ(first.nodes, 1);
  EXPECT_EQ(first.dtype, "fp32");
  EXPECT_DOUBLE_EQ(first.size_bytes, 268435456);
  EXPECT_FALSE(first.in_place);
  EXPECT_TRUE(collective(set.records[1]).in_place);
  EXPECT_DOUBLE_EQ(set.records[0].samples_s[0], 15654e-6);
  EXPECT_DOUBLE_EQ(set.records[5].samples_s[0], 62057e-6);
  EXPECT_EQ(set.records[0].label, "line 14 out-of-place");
}

TEST(NcclTestsLog, OldFormatWithErrorColumnMpirunEnvAndTwoHosts) {
  // https://github.com/NVIDIA/nccl-tests/issues/82: broadcast, "error" column, no redop,
  // NCCL_ALGO / NCCL_PROTO pinned on the mpirun command line.
  RecordSet set = import_measurement_file(kDir + "broadcast_v100_old_format_mpirun.log");
  ASSERT_EQ(set.records.size(), 2u);
  const auto& c = collective(set.records[0]);
  EXPECT_EQ(c.kind, CollectiveKind::kBroadcast);
  EXPECT_EQ(c.ranks, 2);
  EXPECT_EQ(c.nodes, 2);
  EXPECT_EQ(c.algorithm, "ring");
  EXPECT_EQ(c.protocol, "simple");
  EXPECT_EQ(c.scope(), LinkScope::kNetwork);
  EXPECT_DOUBLE_EQ(set.records[0].samples_s[0], 45.82e-6);
  EXPECT_DOUBLE_EQ(set.records[1].samples_s[0], 38.17e-6);
  const RecordSource& s = set.sources[0];
  EXPECT_EQ(s.nccl, "2.9.6");
  EXPECT_EQ(s.env.at("NCCL_MAX_NCHANNELS"), "2");
  EXPECT_EQ(s.iterations, 100);  // "-n 100" after the binary is nccl-tests', not mpirun's
  EXPECT_EQ(s.gpu, "Tesla V100-PCIE-16GB");
  EXPECT_EQ(s.tool, "nccl-tests broadcast_perf");
}

TEST(NcclTestsLog, OldFormatWithoutRootNeedsTheRankCountFromTheCaller) {
  // https://github.com/NVIDIA/nccl-tests/issues/176: 128 GPUs, no "# Rank" lines in the issue.
  std::string text = slurp(kDir + "all_reduce_128gpu_old_format_no_root.log");
  EXPECT_NE(error_of(text, {CollectiveKind::kAllReduce, std::nullopt}).find("line 3: cannot tell how many ranks"),
            std::string::npos);
  RecordSet set = read_nccl_tests_log(text, "x.log", {CollectiveKind::kAllReduce, 128});
  ASSERT_EQ(set.records.size(), 12u);
  EXPECT_EQ(collective(set.records[11]).ranks, 128);
  EXPECT_DOUBLE_EQ(set.records[11].samples_s[0], 117.4e-6);
  // With a wrong rank count the printed busbw no longer fits (2 ranks: factor 1, not 1.98).
  std::string wrong = error_of(text, {CollectiveKind::kAllReduce, 2});
  EXPECT_NE(wrong.find("t.log:line 5: column \"busbw\" (out-of-place)"), std::string::npos) << wrong;
}

TEST(NcclTestsLog, MpiPrefixesAreStripped) {
  // Constructed from the issue 36 log with Open MPI --tag-output prefixes.
  RecordSet set = import_measurement_file(kDir + "all_reduce_mpi_prefix_constructed.log");
  ASSERT_EQ(set.records.size(), 6u);
  EXPECT_EQ(collective(set.records[2]).ranks, 4);
  EXPECT_EQ(collective(set.records[2]).protocol, "ll128");  // from a "[1,2]<stderr>:" NCCL INFO line
  std::string plain = "[0] ./build/all_gather_perf -g 2\n"
                      "[0] # nThread 1 nGpus 2 minBytes 8 maxBytes 8 warmup iters: 5 iters: 20\n"
                      "[0] #  Rank  0 Group  0 Pid 1 on h device  0 [0x01] GPU\n"
                      "[0] #  Rank  1 Group  0 Pid 1 on h device  1 [0x02] GPU\n"
                      "[0] #       size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong\n"
                      "[0]      1000000  250000 float none -1  100.0  10.00  5.00  0  100.0  10.00  5.00  0\n";
  RecordSet ag = read_nccl_tests_log(plain, "p.log");
  ASSERT_EQ(ag.records.size(), 2u);
  EXPECT_EQ(collective(ag.records[0]).kind, CollectiveKind::kAllGather);
}

TEST(NcclTestsLog, PerIterationColumnsAreMappedByName) {
  // Constructed from nccl-tests' printed -I header (src/util.cu).
  RecordSet set = import_measurement_file(kDir + "all_reduce_per_iteration_constructed.log");
  ASSERT_EQ(set.records.size(), 4u);
  EXPECT_DOUBLE_EQ(set.records[0].samples_s[0], 15654e-6);  // "time", not i_min
  EXPECT_DOUBLE_EQ(set.records[3].samples_s[0], 31183e-6);
  EXPECT_TRUE(collective(set.records[3]).in_place);
  EXPECT_EQ(set.sources[0].tool, "nccl-tests all_reduce_perf 2.19.6");
  EXPECT_EQ(set.sources[0].nccl, "2.29.3");
  EXPECT_EQ(set.sources[0].warmup_iterations, 1);
}

TEST(NcclTestsLog, InPlaceFirstTableAndBlankHalf) {
  // mscclpp-test prints in-place first and leaves a half blank (microsoft/mscclpp#87).
  std::string text =
      "./alltoall_perf\n"
      "#  Rank  0 Group  0 Pid 1 on a device  0 [0x01] GPU\n"
      "#  Rank  1 Group  0 Pid 1 on a device  1 [0x02] GPU\n"
      "#                                    in-place                       out-of-place          \n"
      "#       size         count     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong\n"
      "#        (B)    (elements)     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       \n"
      "  1073741824      16777216                                     23275   46.13   23.07      0\n";
  RecordSet set = read_nccl_tests_log(text, "m.log");
  ASSERT_EQ(set.records.size(), 1u);
  EXPECT_FALSE(collective(set.records[0]).in_place);
  EXPECT_DOUBLE_EQ(set.records[0].samples_s[0], 23275e-6);
}

TEST(NcclTestsLog, BusBandwidthConventionsAgainstPublishedRows) {
  struct Case {
    CollectiveKind kind;
    int ranks;
    double size, time_us, algbw, busbw;
  };
  const Case cases[] = {
      // https://github.com/tinygrad/open-gpu-kernel-modules/issues/36 (4x RTX 4090)
      {CollectiveKind::kAllReduce, 4, 268435456, 15654, 17.15, 25.72},
      // https://github.com/coreweave/nccl-tests/pull/43 (GB200 NVL72, 72 ranks)
      {CollectiveKind::kAllReduce, 72, 8589934592, 20299, 423.16, 834.57},
      // https://github.com/microsoft/mscclpp/pull/87 (2 nodes x 8, mscclpp-test alltoall)
      {CollectiveKind::kAllToAll, 16, 1073741824, 23275, 46.13, 43.25},
      // https://github.com/NVIDIA/nccl-tests/issues/128 (reduce_scatter, 2 nodes x 4)
      {CollectiveKind::kReduceScatter, 8, 256, 24.01, 0.01, 0.01},
      // https://github.com/NVIDIA/nccl-tests/issues/82 (broadcast, 2 ranks)
      {CollectiveKind::kBroadcast, 2, 8, 45.82, 0.00, 0.00},
  };
  for (const auto& c : cases) {
    for (bool bus : {false, true}) {
      PrintedBandwidth p{c.size, c.time_us, 0.01, bus ? c.busbw : c.algbw, 0.01};
      EXPECT_FALSE(bandwidth_mismatch(c.kind, c.ranks, bus, p)) << to_string(c.kind) << " " << c.ranks;
    }
  }
  // The closed forms for the collectives without a public row here.
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllGather, 8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kReduce, 8), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kSendRecv, 8), 1.0);
  // A wrong collective is caught: the all_reduce row read as all_gather.
  PrintedBandwidth row{268435456, 15654, 1, 25.72, 0.01};
  EXPECT_TRUE(bandwidth_mismatch(CollectiveKind::kAllGather, 4, true, row));
}

TEST(NcclTestsLog, MalformedInputsNameLineAndColumn) {
  std::string head =
      "./build/all_reduce_perf\n"
      "#  Rank  0 Group  0 Pid 1 on h device  0 [0x01] GPU\n"
      "#  Rank  1 Group  0 Pid 1 on h device  1 [0x02] GPU\n"
      "#       size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong\n";
  EXPECT_NE(error_of(head + "  1000000  250000 float sum -1  100.0  10.00\n")
                .find("t.log:line 5: row has 7 values, the header on line 4 names 13 columns"),
            std::string::npos);
  EXPECT_NE(error_of(head + "  1000000  250000 float sum -1  fast  10.00  10.00  0  100.0  10.00  10.00  0\n")
                .find("t.log:line 5: column \"time\" (out-of-place): expected a time in microseconds > 0, got \"fast\""),
            std::string::npos);
  // A busbw that does not follow from size and time (a column mapped wrongly) are caught by the bandwidth check.
  EXPECT_NE(error_of(head + "  1000000  250000 float sum -1  100.0  10.00  20.00  0  100.0  10.00  10.00  0\n")
                .find("line 5: column \"busbw\" (out-of-place): nccl-tests printed busbw 20"),
            std::string::npos);
  EXPECT_NE(error_of("#  size  count  type  latency  algbw  busbw\n")
                .find("t.log:line 1: unknown column \"latency\""),
            std::string::npos);
  EXPECT_NE(error_of("#  size  count  type  time  algbw  busbw  #wrong\n 8 2 float 1.0 0.0 0.0 0\n")
                .find("unknown nccl-tests column layout"),
            std::string::npos);
  std::string no_binary = head.substr(head.find('\n') + 1) +
                          "  1000000  250000 float sum -1  100.0  10.00  10.00  0  100.0  10.00  10.00  0\n";
  EXPECT_NE(error_of(no_binary).find("t.log:line 3: cannot tell which collective"), std::string::npos);
  EXPECT_EQ(read_nccl_tests_log(no_binary, "t.log", {CollectiveKind::kAllReduce, std::nullopt}).records.size(), 2u);
  EXPECT_NE(error_of("./build/gather_perf\n" + head.substr(head.find('\n') + 1) +
                     "  1000000  250000 float sum -1  100.0  10.00  10.00  0  100.0  10.00  10.00  0\n")
                .find("nccl-tests binary \"gather_perf\" has no collective record type"),
            std::string::npos);
}

TEST(NcclTestsLog, NaTimesSkipThatHalfAndZeroSizesAreSkipped) {
  std::string text =
      "./build/sendrecv_perf\n"
      "#  Rank  0 Group  0 Pid 1 on h device  0 [0x01] GPU\n"
      "#  Rank  1 Group  0 Pid 1 on h device  1 [0x02] GPU\n"
      "#       size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong\n"
      "           0      0 float sum -1  5.0  0.00  0.00  0  5.0  0.00  0.00  0\n"
      "     1000000  250000 float sum -1  100.0  10.00  10.00  N/A  N/A  N/A  N/A  N/A\n"
      "# Out of bounds values : 0 OK\n"
      "# Avg bus bandwidth    : 10 \n";
  RecordSet set = read_nccl_tests_log(text, "s.log");
  ASSERT_EQ(set.records.size(), 1u);
  EXPECT_EQ(collective(set.records[0]).kind, CollectiveKind::kSendRecv);
}

}  // namespace
}  // namespace clustersim
