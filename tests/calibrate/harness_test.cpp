// The harness's pure parts on CPU: routing generators, sweeps from model presets, thread
// collectives / MoE layer / chunked overlap against the CPU references, and the record writer
// (atomic rewrite, resume).
#include <gtest/gtest.h>

#include "tests/support/temp_files.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <thread>

#include "calibrate/calibration_run.hpp"
#include "kernels/collective_reference.hpp"
#include "calibrate/cpu_backend.hpp"
#include "kernels/gemm_reference.hpp"
#include "kernels/moe_reference.hpp"
#include "calibrate/record_file_writer.hpp"
#include "models/cost/record_json.hpp"
#include "calibrate/routing_generator.hpp"
#include "calibrate/sweeps.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {
namespace {

namespace fs = std::filesystem;

std::vector<std::int64_t> counts_of(const kernels::MoeRouting& r) {
  return kernels::plan_moe_dispatch(r).tokens_per_expert;
}

TEST(RoutingGenerator, CountsSumToTokensTimesTopkWithDistinctExperts) {
  for (const char* kind : {"uniform", "zipf1.2", "dirichlet0.3"}) {
    const kernels::MoeRouting r = generate_routing(1000, 16, 4, routing_spec_from_string(kind, 3));
    EXPECT_NO_THROW(kernels::validate_moe_routing(r));  // distinct experts per token
    const auto counts = counts_of(r);
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}), 4000) << kind;
    for (std::int64_t t = 0; t < r.tokens; ++t) {
      float sum = 0;
      for (std::int64_t k = 0; k < r.topk; ++k) sum += r.weights[static_cast<std::size_t>(t * 4 + k)];
      EXPECT_NEAR(sum, 1.0f, 1e-5f);
    }
  }
}

TEST(RoutingGenerator, ZipfIsSkewedAndUniformIsNot) {
  const auto uniform = counts_of(generate_routing(8000, 32, 2, routing_spec_from_string("uniform", 1)));
  const auto zipf = counts_of(generate_routing(8000, 32, 2, routing_spec_from_string("zipf1.2", 1)));
  EXPECT_LT(kernels::moe_imbalance(uniform), 1.3);
  EXPECT_GT(kernels::moe_imbalance(zipf), 3.0);
  // Sorted loads fall off: the most popular expert gets more than the 8th by a wide margin.
  std::vector<std::int64_t> sorted = zipf;
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_GT(sorted[0], 3 * sorted[7]);
}

TEST(RoutingGenerator, SeedDeterminesTheRouting) {
  const RoutingSpec a = routing_spec_from_string("dirichlet0.5", 42);
  const RoutingSpec b = routing_spec_from_string("dirichlet0.5", 43);
  EXPECT_EQ(generate_routing(300, 8, 2, a).experts, generate_routing(300, 8, 2, a).experts);
  EXPECT_NE(generate_routing(300, 8, 2, a).experts, generate_routing(300, 8, 2, b).experts);
  // Pinned values: the generator is the same on every platform and release.
  const auto first = generate_routing(4, 8, 2, routing_spec_from_string("uniform", 7)).experts;
  EXPECT_EQ(first.size(), 8u);
  EXPECT_EQ(first, generate_routing(4, 8, 2, routing_spec_from_string("uniform", 7)).experts);
}

TEST(RoutingGenerator, RejectsBadSpecsAndReadsFiles) {
  EXPECT_THROW(routing_spec_from_string("zipf-1", 1), std::invalid_argument);
  EXPECT_THROW(routing_spec_from_string("gauss", 1), std::invalid_argument);
  EXPECT_THROW(generate_routing(10, 4, 5, {}), std::invalid_argument);
  const fs::path file = test::temp_path("routing.txt");
  std::ofstream(file) << "# token per line\n0 1\n2:0.9, 3:0.1\n\n1 3\n";
  const kernels::MoeRouting r = load_routing_file(file.string(), 4);
  EXPECT_EQ(r.tokens, 3);
  EXPECT_EQ(r.topk, 2);
  EXPECT_EQ(r.experts, (std::vector<std::int32_t>{0, 1, 2, 3, 1, 3}));
  EXPECT_FLOAT_EQ(r.weights[0], 0.5f);
  EXPECT_FLOAT_EQ(r.weights[2], 0.9f);
  std::ofstream(file) << "0 1\n2\n";
  try {
    load_routing_file(file.string(), 4);
    FAIL() << "expected a line error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(":2:"), std::string::npos) << e.what();
  }
  std::ofstream(file) << "0 9\n";
  EXPECT_THROW(load_routing_file(file.string(), 4), std::invalid_argument);
}

TEST(Sweeps, ShapesComeFromModelPresets) {
  // llama-3-8b: hidden 4096, 32 heads x 128, 8 KV heads, intermediate 14336.
  const auto gemms = tensor_parallel_gemms(load_sweep_model("llama-3-8b"), 8);
  ASSERT_EQ(gemms.size(), 4u);
  EXPECT_EQ(gemms[0].name, "qkv");
  EXPECT_EQ(gemms[0].n, (4096 + 2 * 1024) / 8);
  EXPECT_EQ(gemms[0].k, 4096);
  EXPECT_EQ(gemms[1].n, 4096);
  EXPECT_EQ(gemms[1].k, 4096 / 8);
  EXPECT_EQ(gemms[2].n, 2 * 14336 / 8);
  EXPECT_EQ(gemms[3].k, 14336 / 8);
}

TEST(Sweeps, GpuAndCpuSweepsHaveUniqueLabelsAndEverySuite) {
  const auto all = suites_from_string("all");
  for (SweepScale scale : {SweepScale::kGpu, SweepScale::kCpu}) {
    SweepOptions o;
    o.scale = scale;
    const auto cases = build_sweep(all, o);  // throws on a repeated label
    std::set<Suite> seen;
    for (const auto& c : cases) seen.insert(c.suite);
    EXPECT_EQ(seen.size(), 6u);
  }
  EXPECT_THROW(suites_from_string("gemms"), std::invalid_argument);
}

TEST(ThreadCommunicator, RingCollectivesMatchTheReference) {
  using kernels::CollectiveOp;
  for (int ranks : {1, 2, 3, 4}) {
    for (CollectiveOp op : {CollectiveOp::kAllReduce, CollectiveOp::kAllGather,
                            CollectiveOp::kReduceScatter, CollectiveOp::kAllToAll}) {
      const std::size_t n = 12 * static_cast<std::size_t>(ranks);
      std::vector<std::vector<float>> in;
      for (int r = 0; r < ranks; ++r) in.push_back(cpu_operand(n, static_cast<std::uint64_t>(r)));
      const auto expected = kernels::collective_reference(op, in);
      std::vector<std::vector<float>> out(static_cast<std::size_t>(ranks));
      for (int r = 0; r < ranks; ++r) out[static_cast<std::size_t>(r)].assign(expected[0].size(), -1.0f);
      ThreadCommunicator comm(ranks);
      const auto samples = time_ranks(ranks, 1, 2, [&](int r, int) {
        const auto i = static_cast<std::size_t>(r);
        switch (op) {
          case CollectiveOp::kAllReduce: comm.all_reduce(r, in[i].data(), out[i].data(), n); break;
          case CollectiveOp::kAllGather: comm.all_gather(r, in[i].data(), out[i].data(), n); break;
          case CollectiveOp::kReduceScatter:
            comm.reduce_scatter(r, in[i].data(), out[i].data(), n / static_cast<std::size_t>(ranks));
            break;
          case CollectiveOp::kAllToAll:
            comm.all_to_all(r, in[i].data(), out[i].data(), n / static_cast<std::size_t>(ranks));
            break;
          case CollectiveOp::kSendRecv: break;
        }
      });
      EXPECT_EQ(samples.size(), 2u);
      for (int r = 0; r < ranks; ++r) {
        const auto& got = out[static_cast<std::size_t>(r)];
        const auto& want = expected[static_cast<std::size_t>(r)];
        for (std::size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-5) << kernels::to_string(op) << " ranks " << ranks << " rank " << r;
        }
      }
    }
  }
}

TEST(ThreadMoeLayer, MatchesTheMoeReference) {
  for (int ranks : {1, 2, 4}) {
    const kernels::MoeRouting routing =
        generate_routing(64, 8, 2, routing_spec_from_string("zipf1.2", 5));
    const std::int64_t hidden = 16, ffn = 24;
    const auto x = cpu_operand(static_cast<std::size_t>(64 * hidden), 1);
    const auto w = cpu_operand(static_cast<std::size_t>(8 * hidden * ffn), 2);
    const auto expected = kernels::moe_layer_reference(routing, hidden, ffn, x, w);
    const auto got = run_thread_moe_layer(routing, ranks, hidden, ffn, x, w);
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-4) << ranks;
  }
}

TEST(ThreadOverlap, ChunkedAgGemmAndGemmRsMatchPlainGemms) {
  for (bool overlapped : {false, true}) {
    // AG+GEMM: rank r's output is gather(A) x B_r.
    OverlapCase ag{true, "decomposed", 8, 6, 5, 2, 4, "fp32"};
    const auto ag_out = run_thread_overlap(ag, overlapped);
    std::vector<float> a;
    for (int r = 0; r < 2; ++r) {
      const auto shard = cpu_operand(4 * 5, 100 + static_cast<std::uint64_t>(r));
      a.insert(a.end(), shard.begin(), shard.end());
    }
    for (int r = 0; r < 2; ++r) {
      const auto b = cpu_operand(5 * 3, 200 + static_cast<std::uint64_t>(r));
      const auto want = kernels::gemm_reference(8, 3, 5, a, b, 1.0f, {}, 0.0f);
      for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(ag_out[static_cast<std::size_t>(r)][i], want[i], 1e-5);
    }
    // GEMM+RS: rank r's output is rows block r of sum_s A_s B_s.
    OverlapCase rs{false, "decomposed", 8, 3, 6, 2, 4, "fp32"};
    const auto rs_out = run_thread_overlap(rs, overlapped);
    std::vector<float> sum(8 * 3, 0.0f);
    for (int s = 0; s < 2; ++s) {
      const auto as = cpu_operand(8 * 3, 300 + static_cast<std::uint64_t>(s));
      const auto bs = cpu_operand(3 * 3, 400 + static_cast<std::uint64_t>(s));
      const auto part = kernels::gemm_reference(8, 3, 3, as, bs, 1.0f, {}, 0.0f);
      for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
    }
    for (int r = 0; r < 2; ++r) {
      for (std::size_t i = 0; i < 12; ++i) {
        EXPECT_NEAR(rs_out[static_cast<std::size_t>(r)][i], sum[static_cast<std::size_t>(r) * 12 + i], 1e-5);
      }
    }
  }
}

// A backend that makes records without measuring, to test the runner and writer.
class FakeBackend final : public Backend {
 public:
  std::string name() const override { return "fake"; }
  SweepScale scale() const override { return SweepScale::kCpu; }
  RecordSource source(Suite suite) const override {
    RecordSource s;
    s.id = std::string("fake-") + std::string(to_string(suite));
    s.kind = "harness";
    s.gpu = "fake";
    s.timer = "host_wall";
    s.statistic = "sample";
    return s;
  }
  std::vector<MeasurementRecord> measure(const SweepCase& c) override {
    ++measured;
    MeasurementRecord r;
    const auto& g = std::get<GemmCase>(c.shape);
    r.shape = GemmRecord{g.m, g.n, g.k, 1, Dtype::kFp32, "fake", {}, {}, {}, {}};
    r.samples_s = {1e-3, 2e-3};
    return {r};
  }
  int measured = 0;
};

std::vector<SweepCase> gemm_cases(int n) {
  std::vector<SweepCase> cases;
  for (int i = 1; i <= n; ++i) {
    cases.push_back({Suite::kGemm, "gemm case/" + std::to_string(i), GemmCase{i, 8, 8, "fp32"}});
  }
  return cases;
}

TEST(RecordFileWriter, WritesAValidFileAfterEveryCaseAndResumes) {
  const std::string path = test::temp_path("writer.records.json").string();
  fs::remove(path);
  std::ostringstream progress;
  {
    RecordFileWriter writer(path, false);
    EXPECT_EQ(load_record_set(path).records.size(), 0u);  // valid from the start
    FakeBackend backend;
    const auto cases = gemm_cases(3);
    run_calibration(backend, {cases[0], cases[1]}, writer, progress);
    const RecordSet on_disk = load_record_set(path);
    ASSERT_EQ(on_disk.records.size(), 2u);
    EXPECT_EQ(on_disk.records[1].label, "gemm case/2");  // '/' inside a case label is fine
    EXPECT_EQ(on_disk.records[0].source, "fake-gemm");
  }
  // Resume: the two finished cases are skipped, the third is measured.
  RecordFileWriter writer(path, true);
  FakeBackend backend;
  const RunSummary s = run_calibration(backend, gemm_cases(3), writer, progress);
  EXPECT_EQ(s.skipped, 2u);
  EXPECT_EQ(s.measured, 1u);
  EXPECT_EQ(backend.measured, 1);
  EXPECT_EQ(load_record_set(path).records.size(), 3u);
  // Without --resume the file starts over.
  RecordFileWriter fresh(path, false);
  EXPECT_EQ(load_record_set(path).records.size(), 0u);
  // No temporary left behind.
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) {
    EXPECT_EQ(e.path().string().find("writer.records.json.partial"), std::string::npos);
  }
}

TEST(RecordFileWriter, RefusesToMixMachines) {
  const std::string path = test::temp_path("mix.records.json").string();
  RecordFileWriter writer(path, false);
  RecordSource a;
  a.id = "x";
  a.kind = "harness";
  a.gpu = "H100";
  writer.ensure_source(a);
  a.gpu = "A100";
  EXPECT_THROW(writer.ensure_source(a), std::invalid_argument);
}

// The memory suite copies half the bytes into the other half on every rank thread; the record
// keeps the read-plus-written convention and every timed sample. (How fast is a benchmark's
// question, not a unit test's: the replay test judges the fitted bandwidth end to end.)
TEST(CpuBackend, MemorySuiteRecordsEveryCopyWithItsBytes) {
  SweepOptions o;
  o.scale = SweepScale::kCpu;
  const auto cases = memory_sweep(o);
  ASSERT_GE(cases.size(), 3u);
  const auto backend = make_cpu_backend({1, 1, 3});
  for (const auto& c : cases) {
    const MeasurementRecord r = backend->measure(c).at(0);
    EXPECT_DOUBLE_EQ(std::get<MemoryRecord>(r.shape).bytes, static_cast<double>(std::get<MemoryCase>(c.shape).bytes));
    ASSERT_EQ(r.samples_s.size(), 3u);
    for (double t : r.samples_s) EXPECT_GT(t, 0.0);
  }
}

TEST(CpuBackend, SourceDescribesThisMachine) {
  const auto backend = make_cpu_backend({});
  const RecordSource s = backend->source(Suite::kCollectives);
  EXPECT_EQ(s.gpu.rfind("cpu: ", 0), 0u);
  EXPECT_EQ(s.timer, "host_wall");
  // A "GPU" is one rank thread: one thread per GEMM, the rank threads side by side.
  EXPECT_EQ(s.sm_count, 1);
  EXPECT_EQ(s.gpus_per_node, cpu_rank_threads());
  EXPECT_EQ(cpu_rank_threads(), static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));
  EXPECT_EQ(s.id, "harness-cpu-collectives");
}

}  // namespace
}  // namespace clustersim::calibrate
