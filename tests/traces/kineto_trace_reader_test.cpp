#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "models/inputs/input_error.hpp"
#include "traces/kineto_trace_reader.hpp"
#include "traces/measurement_import.hpp"

namespace clustersim {
namespace {

// Real traces from facebookresearch/HolisticTraceAnalysis (MIT), kept outside the repository.
const std::string kDir = CLUSTERSIM_KINETO_REFERENCE_DIR;

RecordSet import_or_skip(const std::string& name) {
  std::string path = kDir + "/" + name;
  if (!std::filesystem::exists(path)) return {};
  return import_measurement_file(path);
}

#define SKIP_IF_ABSENT(set)                                                             \
  if ((set).sources.empty()) GTEST_SKIP() << "reference trace not found under " << kDir

std::map<std::string, std::size_t> samples_by_op(const RecordSet& set) {
  std::map<std::string, std::size_t> out;
  for (const auto& r : set.records) {
    std::string op = std::holds_alternative<CollectiveRecord>(r.shape)
                         ? std::string(to_string(std::get<CollectiveRecord>(r.shape).kind))
                         : "gemm";
    out[op] += r.samples_s.size();
  }
  return out;
}

TEST(KinetoTrace, NcclMetadataOnKernels) {
  // A100 DDP, rank 0 of 2: 15 all-reduce and 6 broadcast kernels carrying Collective name,
  // In/Out msg nelems, Group size and dtype (counted independently with python3).
  RecordSet set = import_or_skip("hta_nccl_data_a100_rank0of2.json.gz");
  SKIP_IF_ABSENT(set);
  const RecordSource& s = set.sources[0];
  EXPECT_EQ(s.kind, "kineto");
  EXPECT_EQ(s.gpu, "NVIDIA A100-PG509-200");
  EXPECT_EQ(s.sm_count, 108);
  EXPECT_EQ(s.nccl, "2.17.1");
  auto counts = samples_by_op(set);
  EXPECT_EQ(counts["all_reduce"], 15u);
  EXPECT_EQ(counts["broadcast"], 6u);
  EXPECT_EQ(counts.count("gemm"), 0u);  // aten::mm recorded without shapes
  std::vector<double> sizes;
  for (const auto& r : set.records) {
    const auto& c = std::get<CollectiveRecord>(r.shape);
    EXPECT_EQ(c.ranks, 2);
    EXPECT_EQ(c.nodes, 1);  // ranks 0 and 1 on one 8-GPU host
    if (c.kind == CollectiveKind::kAllReduce) sizes.push_back(c.size_bytes);
  }
  EXPECT_EQ(sizes, (std::vector<double>{8196000, 9724160, 26255360, 26550272, 31502336}));
  // 2049000 floats: three kernels of 3306.963, 2520.607 and 5993.392 us.
  const auto& first = set.records[0];
  ASSERT_EQ(first.samples_s.size(), 3u);
  EXPECT_NEAR(first.samples_s[0], 3306.963e-6, 1e-12);
  EXPECT_NEAR(first.samples_s[2], 5993.392e-6, 1e-12);
}

TEST(KinetoTrace, OlderTraceFallsBackToNcclCpuOps) {
  // A100-80GB recsys training, rank 0 of 16: 80 SendRecv kernels; the 45 launched under
  // nccl:all_to_all become all_to_all records (13 sizes); those under all_reduce /
  // reduce_scatter / all_gather ops are not trusted (a SendRecv kernel cannot run them).
  RecordSet set = import_or_skip("hta_a100_80gb_rank0of16.json.gz");
  SKIP_IF_ABSENT(set);
  auto counts = samples_by_op(set);
  EXPECT_EQ(counts["all_to_all"], 45u);
  EXPECT_EQ(counts.count("all_reduce"), 0u);
  std::size_t a2a_records = 0;
  for (const auto& r : set.records) {
    if (!std::holds_alternative<CollectiveRecord>(r.shape)) continue;
    const auto& c = std::get<CollectiveRecord>(r.shape);
    ++a2a_records;
    EXPECT_EQ(c.ranks, 16);
    EXPECT_EQ(c.nodes, 2);  // world 16 at 8 GPUs per host
    EXPECT_NE(r.label.find("group size assumed = world size"), std::string::npos);
  }
  EXPECT_EQ(a2a_records, 13u);
  const auto& first = std::get<CollectiveRecord>(set.records[0].shape);
  EXPECT_DOUBLE_EQ(first.size_bytes, 384);  // 48 int64
  EXPECT_EQ(first.dtype, "int64");
  EXPECT_EQ(set.sources[0].nodes, 2);
}

TEST(KinetoTrace, GemmShapesFromLaunchingOps) {
  RecordSet set = import_or_skip("hta_sampled_rank-0_of128.json.gz");
  SKIP_IF_ABSENT(set);
  EXPECT_EQ(set.sources[0].gpu, "unknown");  // no deviceProperties in this file
  const GemmRecord* found = nullptr;
  const MeasurementRecord* record = nullptr;
  for (const auto& r : set.records) {
    if (const auto* g = std::get_if<GemmRecord>(&r.shape); g && g->m == 10 && g->n == 300) {
      found = g;
      record = &r;
    }
  }
  ASSERT_NE(found, nullptr);
  // aten::mm Input Dims [[10, 327680], [327680, 300]]: 4 calls, each one TF32 cutlass kernel
  // (s1688gemm) of grid [4, 2, 108], 524, 522, 529 and 527 us.
  EXPECT_EQ(found->k, 327680);
  EXPECT_EQ(found->dtype, Dtype::kTf32);
  EXPECT_EQ(found->ctas, 864);
  ASSERT_EQ(record->samples_s.size(), 4u);
  EXPECT_NEAR(std::accumulate(record->samples_s.begin(), record->samples_s.end(), 0.0), 2102e-6, 1e-12);
  auto counts = samples_by_op(set);
  EXPECT_EQ(counts["all_to_all"], 4u);  // the 4 SendRecv kernels under nccl:all_to_all
  for (const auto& r : set.records) {
    if (const auto* c = std::get_if<CollectiveRecord>(&r.shape)) {
      EXPECT_EQ(c->ranks, 128);
      EXPECT_NE(r.label.find("nodes unknown, assumed 1"), std::string::npos);
    }
  }
}

TEST(KinetoTrace, MalformedTraces) {
  auto error_of = [](const nlohmann::json& doc) {
    try {
      read_kineto_trace(doc, "k.json");
    } catch (const InputErrors& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of({{"traceEvents", 3}}).find("k.json:/traceEvents: expected an array"), std::string::npos);
  nlohmann::json bad_dur = {{"traceEvents",
                             {{{"ph", "X"}, {"cat", "kernel"}, {"name", "k"}, {"ts", 1.0}, {"dur", "long"}}}}};
  EXPECT_NE(error_of(bad_dur).find("k.json:/traceEvents/0/dur: expected a kernel duration"), std::string::npos);
  nlohmann::json empty = {{"traceEvents", nlohmann::json::array()}};
  EXPECT_NE(error_of(empty).find("found no NCCL kernel"), std::string::npos);
}

}  // namespace
}  // namespace clustersim
