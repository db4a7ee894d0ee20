#pragma once
// Measurements that cost models are fitted from: one record per measured configuration, with
// every timing sample kept, and the source (provenance, system, method) it came from.
// Importers (traces/) and the harness (calibrate/) produce them; fitters (calibrate/) read
// them; profiles carry them next to their fits. Format: docs/profiles.md.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/inputs/cluster_spec.hpp"

namespace clustersim {

enum class CollectiveKind { kAllReduce, kAllGather, kReduceScatter, kAllToAll, kBroadcast, kReduce,
                            kSendRecv };
std::string_view to_string(CollectiveKind kind);  // "all_reduce", "all_gather", ...
std::optional<CollectiveKind> collective_kind_from_string(std::string_view name);

// nccl-tests conventions (doc/PERFORMANCE.md): `size_bytes` is the column "size", i.e. the
// bytes of the full array: the reduced buffer for all_reduce/broadcast/reduce, the gathered
// (output) buffer for all_gather, the input buffer for reduce_scatter, the send buffer for
// all_to_all, the message for send_recv. algbw = size / time; busbw = algbw * factor.
double algorithm_bandwidth_bytes_per_s(double size_bytes, double time_s);
double bus_bandwidth_factor(CollectiveKind kind, int ranks);
// Time of one operation from a published busbw figure (inverse of the two above).
double time_from_bus_bandwidth_s(CollectiveKind kind, int ranks, double size_bytes,
                                 double bus_bandwidth_bytes_per_s);

// Where a collective's bytes travel: inside one NVLink domain or across the network.
enum class LinkScope { kNvlink, kNetwork };
std::string_view to_string(LinkScope scope);

struct CollectiveRecord {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  int ranks = 0;             // communicator size
  int nodes = 1;             // nodes the communicator spans
  std::string algorithm = "any";  // NCCL_ALGO as pinned or reported: ring, tree, nvls, ... or any
  std::string protocol = "any";   // NCCL_PROTO: simple, ll, ll128, or any
  double size_bytes = 0;     // nccl-tests "size" (see above)
  std::string dtype = "unknown";
  bool in_place = false;
  LinkScope scope() const { return nodes > 1 ? LinkScope::kNetwork : LinkScope::kNvlink; }
};

// A grouped GEMM's record (one call over many experts' GEMMs of `batch` experts and m rows
// each) names its kernel "grouped:<kernel>"; it fits the grouped fit, never the dense one.
bool grouped_gemm_implementation(std::string_view implementation);

struct GemmRecord {
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t batch = 1;
  Dtype dtype = Dtype::kBf16;      // input dtype
  std::string implementation = "unknown";  // cublaslt, deepgemm, torch, cutlass, ...
  // The kernel that ran, when known (cuBLASLt algo attributes, or a trace's grid size).
  std::optional<std::int64_t> tile_m, tile_n, split_k, ctas;
};

enum class AttentionPass { kForward, kBackward, kForwardBackward, kDecode };
std::string_view to_string(AttentionPass pass);

struct AttentionRecord {
  AttentionPass pass = AttentionPass::kForward;
  std::int64_t batch = 0, heads = 0, kv_heads = 0;
  std::int64_t seq_q = 0, seq_kv = 0;  // decode: seq_q = new tokens per sequence
  std::int64_t head_dim = 0;
  bool causal = false;
  Dtype dtype = Dtype::kBf16;
  std::string implementation = "unknown";  // flash_attention_2, flash_attention_3, cudnn, ...
  bool operator==(const AttentionRecord&) const = default;
};

// MoE token dispatch / combine (or a plain all_to_all(v)) across expert-parallel ranks.
enum class MoePhase { kDispatch, kCombine };
std::string_view to_string(MoePhase phase);

struct AllToAllRecord {
  MoePhase phase = MoePhase::kDispatch;
  int ranks = 0;
  int nodes = 1;
  double bytes_per_rank = 0;  // bytes the busiest rank sends (or receives)
  double imbalance = 1.0;     // max over experts of tokens / mean tokens (1 = uniform routing)
  std::string implementation = "unknown";  // deepep_normal, deepep_low_latency, nccl, ...
  LinkScope scope() const { return nodes > 1 ? LinkScope::kNetwork : LinkScope::kNvlink; }
};

// A GEMM overlapped with tensor-parallel communication, timed four ways.
enum class OverlapPattern { kAllGatherGemm, kGemmReduceScatter };
std::string_view to_string(OverlapPattern pattern);

struct OverlapRecord {
  OverlapPattern pattern = OverlapPattern::kAllGatherGemm;
  std::string variant = "unknown";  // decomposed, fused, ...
  std::int64_t m = 0, n = 0, k = 0;  // the full (gathered) GEMM
  int ranks = 0;
  double gemm_alone_s = 0, comm_alone_s = 0, sequential_s = 0;  // overlapped time = samples
};

// A memory-bound kernel (STREAM copy/triad, an elementwise op): bytes read plus written.
struct MemoryRecord {
  std::string kernel = "copy";  // copy, scale, add, triad, elementwise, cast_transpose, ...
  double bytes = 0;
};
// Memory-bound kernels measured far from STREAM's rate: the records of each make a fit of its
// own, "memory/<kernel>", which prices only that kernel (not other memory-bound work, not the
// GEMM memory term). Transformer Engine's FP8 cast-transpose (16-bit in; FP8 and its transpose
// out), and Megatron-LM's vocabulary-parallel cross-entropy, forward and backward, unfused
// (vocab_parallel_cross_entropy) and fused (cross_entropy_loss_fusion). A lowered operation of
// the same name takes the fit (models/planning, memory_kernel).
inline constexpr std::string_view kCastTranspose = "cast_transpose";
inline constexpr std::array<std::string_view, 5> kOwnFitMemoryKernels = {
    kCastTranspose, "cross_entropy", "cross_entropy_grad", "fused_cross_entropy", "fused_cross_entropy_grad"};
// Index into kOwnFitMemoryKernels, or -1 when `kernel` is priced by the generic memory fit.
inline int own_fit_memory_kernel(std::string_view kernel) {
  for (std::size_t i = 0; i < kOwnFitMemoryKernels.size(); ++i) {
    if (kOwnFitMemoryKernels[i] == kernel) return static_cast<int>(i);
  }
  return -1;
}

// One whole iteration of a serving engine on one instance (all layers, sampling, the engine's
// per-step overhead), as a serving system's profiler times it: a batch of `batch` sequences.
// Prefill: `tokens` = sum of the prompt lengths, `tokens_squared` = sum of their squares.
// Decode (one new token per sequence): `tokens` = sum of the context lengths.
enum class ServePhase { kPrefill, kDecode };
std::string_view to_string(ServePhase phase);

struct ServeIterationRecord {
  std::string model;  // clustersim's model name: the preset name or the config file's stem
  std::int64_t tensor_parallel_size = 1;
  ServePhase phase = ServePhase::kPrefill;
  std::int64_t batch = 1;
  double tokens = 0, tokens_squared = 0;
  Dtype dtype = Dtype::kFp16;
  std::string implementation = "unknown";  // the serving engine: swift_transformer, vllm, ...
};

using RecordShape = std::variant<CollectiveRecord, GemmRecord, AttentionRecord, AllToAllRecord,
                                 OverlapRecord, MemoryRecord, ServeIterationRecord>;

struct MeasurementRecord {
  std::string source;            // id of a RecordSource in the same file
  std::string label;             // where it came from inside the source, e.g. "line 42"
  RecordShape shape;
  std::vector<double> samples_s;  // every sample, seconds; a published figure is one sample
};

// Who measured, on what, and how. Strings are free text except the enumerated fields.
struct RecordSource {
  std::string id;
  // provenance
  std::string kind;  // harness | nccl-tests | kineto | literature
  std::string tool;  // e.g. "nccl-tests all_reduce_perf 2.13.8"
  std::string url;
  std::string date;
  std::string file;
  // system
  std::string gpu;
  std::optional<std::int64_t> sm_count;
  std::optional<double> sm_clock_mhz, memory_clock_mhz;  // observed (median) or locked clocks
  std::string driver, cuda, nccl;
  std::map<std::string, std::string> env;  // NCCL_* and CUDA_* variables that were set
  std::optional<std::int64_t> gpus_per_node, nodes;
  std::string interconnect;  // free text: "NVSwitch NVLink4, 8x400G NDR"
  // method
  std::string timer = "unknown";      // cuda_event | cupti | host_wall | published | unknown
  std::optional<std::int64_t> warmup_iterations, iterations;
  std::string l2 = "unknown";         // flush | rotate | none | unknown
  std::string statistic = "unknown";  // what each sample is: sample | mean | median | min | max
};

struct RecordSet {
  std::vector<RecordSource> sources;
  std::vector<MeasurementRecord> records;
};

}  // namespace clustersim
