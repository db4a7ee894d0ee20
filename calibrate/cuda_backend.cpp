#include "calibrate/cuda_backend.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernels/attention.hpp"
#include "kernels/cuda_device.hpp"
#include "kernels/device_info.hpp"
#include "kernels/gemm_run.hpp"
#include "kernels/memory_copy.hpp"
#include "kernels/moe_layer.hpp"
#include "kernels/nccl_collective.hpp"
#include "calibrate/routing_generator.hpp"
#include "kernels/tp_overlap.hpp"

namespace clustersim::calibrate {

namespace {

kernels::GemmDtype gemm_dtype(const std::string& dtype) {
  if (dtype == "fp16") return kernels::GemmDtype::kFp16;
  if (dtype == "fp8") return kernels::GemmDtype::kFp8E4m3;
  return kernels::GemmDtype::kBf16;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& o) : options_(o), info_(kernels::device_info(0)) {
    timing_.warmup_iterations = o.warmup_iterations;
    timing_.iterations = o.iterations;
  }

  std::string name() const override { return "cuda"; }
  SweepScale scale() const override { return SweepScale::kGpu; }
  bool supports(Suite suite) const override {
    return suite == Suite::kGemm || suite == Suite::kCollectives || suite == Suite::kOverlap ||
           suite == Suite::kMoe || suite == Suite::kAttention || suite == Suite::kMemory;
  }

  RecordSource source(Suite suite) const override {
    RecordSource s;
    s.id = fmt::format("harness-cuda-{}", to_string(suite));
    s.kind = "harness";
    s.tool = fmt::format("clustersim calibrate run --backend cuda (cuBLASLt {}, NCCL {})", info_.cublas,
                         info_.nccl);
    s.date = utc_date_now();
    s.gpu = info_.name;
    s.sm_count = info_.sm_count;
    s.sm_clock_mhz = info_.sm_clock_mhz;
    s.memory_clock_mhz = info_.memory_clock_mhz;
    s.driver = info_.driver;
    s.cuda = info_.cuda;
    s.nccl = info_.nccl;
    s.env = nccl_cuda_environment();
    s.gpus_per_node = kernels::cuda_device_count();
    s.nodes = 1;
    s.warmup_iterations = options_.warmup_iterations;
    s.iterations = options_.iterations;
    // GEMMs rotate buffers and are timed with events; the rest flush L2 and prefer CUPTI (a
    // run that fell back to events says so in its records' source only per suite: see docs).
    s.timer = suite == Suite::kGemm ? "cuda_event" : "cupti";
    s.l2 = suite == Suite::kGemm ? "rotate" : "flush";
    s.statistic = "sample";
    return s;
  }

  std::vector<MeasurementRecord> measure(const SweepCase& c) override {
    MeasurementRecord record;
    if (const auto* m = std::get_if<MemoryCase>(&c.shape)) {
      const kernels::KernelRun run = kernels::run_memory_copy({m->bytes}, timing_);
      record.samples_s = run.samples_s;
      MemoryRecord r;
      r.kernel = m->kernel;
      r.bytes = run.attributes.at("bytes");
      record.shape = r;
      record.label = "timer=" + run.timer;
      return {record};
    }
    if (const auto* g = std::get_if<GemmCase>(&c.shape)) {
      const kernels::KernelRun run = kernels::run_gemm({g->m, g->n, g->k, gemm_dtype(g->dtype)}, timing_);
      record.samples_s = run.samples_s;
      GemmRecord r;
      r.m = g->m;
      r.n = g->n;
      r.k = g->k;
      r.dtype = dtype_from_string(g->dtype).value_or(Dtype::kBf16);
      r.implementation = "cublaslt";
      // cuBLASLt reports a tile *id* (cublasLtMatmulTile_t), not BM x BN; the id goes in the label.
      const auto split = run.attributes.find("split_k");
      if (split != run.attributes.end() && split->second > 0) r.split_k = static_cast<std::int64_t>(split->second);
      record.shape = r;
      record.label = fmt::format("tile_id={} stages_id={}", run.attributes.at("tile_id"),
                                 run.attributes.at("stages_id"));
      return {record};
    }
    if (const auto* k = std::get_if<CollectiveCase>(&c.shape)) {
      kernels::CollectiveConfig config{k->op, k->ranks, k->size_bytes, k->algorithm, k->protocol, 0};
      const kernels::KernelRun run = kernels::run_nccl_collective(config, timing_);
      record.samples_s = run.samples_s;
      CollectiveRecord r;
      r.kind = collective_kind_from_string(kernels::to_string(k->op)).value();
      r.ranks = k->ranks;
      r.nodes = 1;
      r.algorithm = k->algorithm;
      r.protocol = k->protocol;
      r.size_bytes = static_cast<double>(k->size_bytes);
      r.dtype = k->dtype;
      record.shape = r;
      record.label = "timer=" + run.timer;
      return {record};
    }
    if (const auto* o = std::get_if<OverlapCase>(&c.shape)) {
      kernels::OverlapConfig config{o->all_gather_gemm, o->variant, o->m, o->n, o->k, o->ranks, o->chunks, 0};
      const kernels::KernelRun run = kernels::run_tp_overlap(config, timing_);
      record.samples_s = run.samples_s;
      OverlapRecord r;
      r.pattern = o->all_gather_gemm ? OverlapPattern::kAllGatherGemm : OverlapPattern::kGemmReduceScatter;
      r.variant = o->variant;
      r.m = o->m;
      r.n = o->n;
      r.k = o->k;
      r.ranks = o->ranks;
      r.gemm_alone_s = run.attributes.at("gemm_alone_s");
      r.comm_alone_s = run.attributes.at("comm_alone_s");
      r.sequential_s = run.attributes.at("sequential_s");
      record.shape = r;
      // comm_sms: NCCL maxCTAs when pinned, -1 when NCCL chose, 0 for copy engines.
      record.label = fmt::format("chunks={} comm_sms={} timer={}", o->chunks,
                                 run.attributes.at("comm_sms"), run.timer);
      return {record};
    }
    if (const auto* moe = std::get_if<MoeCase>(&c.shape)) {
      kernels::MoeLayerConfig config;
      config.ranks = moe->ranks;
      config.hidden = moe->hidden;
      config.ffn = moe->ffn;
      config.routing = generate_routing(moe->tokens_per_rank * moe->ranks, moe->experts, moe->topk, moe->routing);
      const kernels::MoeLayerRun runs = kernels::run_moe_layer(config, timing_);
      const double imbalance = kernels::moe_imbalance(runs.dispatch.tokens_per_expert);
      std::vector<MeasurementRecord> records;
      for (const auto& [phase, run] : {std::pair{MoePhase::kDispatch, &runs.dispatch},
                                       std::pair{MoePhase::kCombine, &runs.combine}}) {
        MeasurementRecord r;
        AllToAllRecord a;
        a.phase = phase;
        a.ranks = moe->ranks;
        a.nodes = 1;
        a.bytes_per_rank = run->attributes.at("bytes_per_rank");
        a.imbalance = imbalance;
        a.implementation = "nccl";
        r.shape = a;
        r.samples_s = run->samples_s;
        // As the CPU backend: the label keeps tokens per expert (no record field for them).
        r.label = fmt::format("{} tokens_per_expert={} timer={}", to_string(phase),
                              fmt::join(run->tokens_per_expert, ","), run->timer);
        records.push_back(std::move(r));
      }
      return records;
    }
    if (const auto* a = std::get_if<AttentionCase>(&c.shape)) {
      kernels::AttentionConfig config;
      config.pass = a->pass;
      config.batch = a->batch;
      config.heads = a->heads;
      config.kv_heads = a->kv_heads;
      config.head_dim = a->head_dim;
      config.seq_q = a->seq_q;
      config.seq_kv = a->seq_kv;
      config.causal = a->causal;
      config.page_size = a->page_size;
      config.num_splits = a->num_splits;
      const kernels::KernelRun run = kernels::run_attention(config, timing_);
      record.samples_s = run.samples_s;
      // A correctness and scaling probe (SIMT, no tensor cores), far from FlashAttention 3.
      record.shape = attention_record_of(*a, Dtype::kBf16, "clustersim_probe");
      record.label = "timer=" + run.timer;
      return {record};
    }
    throw BackendUnavailable(fmt::format("suite {} is not implemented on the CUDA backend yet",
                                         to_string(c.suite)));
  }

 private:
  BackendOptions options_;
  kernels::DeviceInfo info_;
  kernels::TimingOptions timing_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  if (kernels::cuda_device_count() == 0) {
    throw BackendUnavailable("no CUDA device: " + kernels::cuda_device_status());
  }
  if (options.gpus > kernels::cuda_device_count()) {
    throw BackendUnavailable(fmt::format("--gpus {} but this process sees {} CUDA device(s)",
                                         options.gpus, kernels::cuda_device_count()));
  }
  return std::make_unique<CudaBackend>(options);
}

}  // namespace clustersim::calibrate

// The module's entry point, found by calibrate/cuda_backend_loader.cpp with dlsym.
extern "C" clustersim::calibrate::Backend* clustersim_make_cuda_backend(
    const clustersim::calibrate::BackendOptions& options) {
  return clustersim::calibrate::make_cuda_backend(options).release();
}
