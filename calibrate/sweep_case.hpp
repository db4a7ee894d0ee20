#pragma once
// One configuration the harness measures. Sweeps (one file per suite: gemm_sweep.cpp, ...)
// produce them; backends measure them into records. Pure C++: no backend, no CUDA.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernels/collective_reference.hpp"
#include "calibrate/routing_generator.hpp"

namespace clustersim::calibrate {

enum class Suite { kGemm, kCollectives, kOverlap, kMoe, kAttention, kMemory };
std::string_view to_string(Suite suite);  // "gemm", "collectives", ...
// "gemm", ..., or "all" (every suite in the order above). Throws std::invalid_argument.
std::vector<Suite> suites_from_string(std::string_view name);

struct GemmCase {
  std::int64_t m = 0, n = 0, k = 0;
  std::string dtype = "bf16";  // records' dtype names: bf16, fp16, fp8, fp32
};

struct CollectiveCase {
  kernels::CollectiveOp op = kernels::CollectiveOp::kAllReduce;
  int ranks = 2;
  std::int64_t size_bytes = 0;  // nccl-tests "size"
  std::string dtype = "bf16";
  std::string algorithm = "any";  // NCCL_ALGO pinned for the run (lower case), or any
  std::string protocol = "any";   // NCCL_PROTO
};

// AG+GEMM: A [m/ranks, k] per rank gathered, times B [k, n/ranks]. GEMM+RS: A [m, k/ranks]
// times B [k/ranks, n], the [m, n] partial sums reduce-scattered by rows.
struct OverlapCase {
  bool all_gather_gemm = true;  // false: GEMM + reduce-scatter
  std::string variant = "decomposed";  // decomposed (NCCL/thread chunks) | fused_ce (copy engines)
  std::int64_t m = 0, n = 0, k = 0;
  int ranks = 2;
  int chunks = 2;
  std::string dtype = "bf16";
};

struct MoeCase {
  std::string model;  // the preset the shape comes from, or "synthetic"
  int ranks = 2;      // expert-parallel ranks
  std::int64_t tokens_per_rank = 0;
  std::int64_t hidden = 0;
  std::int64_t ffn = 0;  // expert GEMM width
  std::int64_t experts = 0;
  std::int64_t topk = 0;
  RoutingSpec routing;
  std::string dtype = "bf16";
};

struct AttentionCase {
  std::string pass = "forward";  // forward | backward | decode
  std::int64_t batch = 1, heads = 0, kv_heads = 0, head_dim = 0;
  std::int64_t seq_q = 0, seq_kv = 0;  // decode: seq_q = 1
  bool causal = false;
  std::int64_t page_size = 0;   // decode only
  std::int64_t num_splits = 1;  // decode only
  std::string dtype = "bf16";
};

// A STREAM-style copy: `bytes` read plus written (half of each), the convention of memory
// records and of the lowering's memory-bound operations.
struct MemoryCase {
  std::string kernel = "copy";
  std::int64_t bytes = 0;
};

struct SweepCase {
  Suite suite = Suite::kGemm;
  std::string label;  // unique in a sweep; records carry it, and --resume skips what has one
  std::variant<GemmCase, CollectiveCase, OverlapCase, MoeCase, AttentionCase, MemoryCase> shape;
};

// What a sweep is sized for: full shapes for GPUs, small ones that finish in seconds on CPU.
enum class SweepScale { kGpu, kCpu };

struct SweepOptions {
  SweepScale scale = SweepScale::kGpu;
  int gpus = 8;  // ranks for collectives, overlap (TP) and MoE (EP)
  // Model presets whose layer shapes the GEMM, overlap and attention sweeps use.
  std::vector<std::string> models = {"llama-3-8b", "llama-3-70b"};
  std::vector<int> tensor_parallel = {1, 2, 4, 8};
  std::uint64_t seed = 7;
};

}  // namespace clustersim::calibrate
