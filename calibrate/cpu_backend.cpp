#include "calibrate/cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace clustersim::calibrate {

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options) : options_(options) {}

  std::string name() const override { return "cpu"; }
  SweepScale scale() const override { return SweepScale::kCpu; }

  RecordSource source(Suite suite) const override {
    RecordSource s;
    s.id = fmt::format("harness-cpu-{}", to_string(suite));
    s.kind = "harness";
    s.tool = "clustersim calibrate run --backend cpu (Eigen GEMM, reference attention, thread "
             "collectives)";
    s.date = utc_date_now();
    s.gpu = "cpu: " + cpu_model_name();
    s.sm_count = 1;
    s.env = nccl_cuda_environment();
    s.gpus_per_node = cpu_rank_threads();
    s.nodes = 1;
    s.interconnect = "shared memory";
    s.timer = "host_wall";
    s.warmup_iterations = options_.warmup_iterations;
    s.iterations = options_.iterations;
    s.l2 = "none";
    s.statistic = "sample";
    return s;
  }

  std::vector<MeasurementRecord> measure(const SweepCase& c) override {
    switch (c.suite) {
      case Suite::kGemm: return {measure_cpu_gemm(std::get<GemmCase>(c.shape), options_)};
      case Suite::kCollectives:
        return {measure_cpu_collective(std::get<CollectiveCase>(c.shape), options_)};
      case Suite::kOverlap: return {measure_cpu_overlap(std::get<OverlapCase>(c.shape), options_)};
      case Suite::kMoe: return measure_cpu_moe(std::get<MoeCase>(c.shape), options_);
      case Suite::kAttention:
        return {measure_cpu_attention(std::get<AttentionCase>(c.shape), options_)};
      case Suite::kMemory: return {measure_cpu_memory(std::get<MemoryCase>(c.shape), options_)};
    }
    return {};
  }

 private:
  BackendOptions options_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

int cpu_rank_threads() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

std::vector<float> cpu_operand(std::size_t count, std::uint64_t seed) {
  std::vector<float> v(count);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (float& f : v) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    f = static_cast<float>(static_cast<double>(x >> 40) * 0x1.0p-23 - 1.0);
  }
  return v;
}

}  // namespace clustersim::calibrate
