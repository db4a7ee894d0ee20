#pragma once
// A serving deployment: pools of model instances, their parallelism, batch limits and
// scheduler, where they sit on the cluster, and how requests are routed. Format: docs/serve.md.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/input_error.hpp"

namespace clustersim {

enum class PoolRole { kColocated, kPrefill, kDecode, kAttention, kExpert, kDraft, kTarget };
std::string_view to_string(PoolRole role);

enum class ServeScheduler { kVllm, kSarathi };
std::string_view to_string(ServeScheduler scheduler);

enum class RouterPolicy { kRoundRobin, kLeastOutstanding, kKvAware };
std::string_view to_string(RouterPolicy policy);

// The engine whose policies run the instances (docs/serve.md, "Engines"): vLLM's (the default)
// or DistServe's disaggregated engine (hand-offs accepted by the decode instance between its
// iterations, KV migration on the decode instance, swap instead of recompute on a full decode),
// or TensorRT-LLM's in-flight batching (decodes and whole new prompts in one iteration within
// max_num_batched_tokens; a request admitted only when the KV blocks of its prompt and all its
// output tokens are free: the GUARANTEED_NO_EVICT capacity policy, so nothing is preempted).
enum class ServeEngine { kVllm, kDistServe, kTrtllm };
std::string_view to_string(ServeEngine engine);

// Speculative decoding on a target pool with a draft pool on other GPUs (SwiftSpec style).
struct SpeculativeSpec {
  std::string draft_pool;        // name of a pool with role draft
  std::int64_t draft_tokens = 4;  // gamma: tokens the draft proposes per step
  double acceptance_rate = 0.7;   // alpha: chance each drafted token is accepted
};

// Attention/FFN disaggregation (MegaScale-Infer): an attention pool names its expert pool.
struct AfdSpec {
  std::string expert_pool;
  std::int64_t micro_batches = 0;  // 0: the smallest m with m >= 2 (1 + T_c / T_f)
};

struct PoolSpec {
  std::string name;
  std::string pointer;  // JSON pointer of the pool, for messages
  PoolRole role = PoolRole::kColocated;
  std::int64_t gpus = 0;
  std::int64_t tp = 1, pp = 1, ep = 1;
  std::int64_t max_batch_tokens = 8192;
  std::int64_t max_sequences = 256;
  ServeScheduler scheduler = ServeScheduler::kVllm;
  std::int64_t token_budget = 512;       // sarathi: tokens per iteration (chunk size)
  std::int64_t kv_block_tokens = 16;
  double watermark = 0.01;               // share of KV blocks kept free at admission
  double memory_fraction = 0.9;          // share of HBM the engine may use (weights + KV)
  // trtllm engine: batch sizes of the captured CUDA graphs, ascending; a decode-only iteration
  // of at most the largest runs padded to the next one (cuda_graph_config enable_padding).
  std::vector<std::int64_t> cuda_graph_batch_sizes;
  std::int64_t first_node = -1;          // placement; -1: on the GPU after the previous pool
  std::int64_t first_gpu = 0;            // derived: the pool's first GPU
  std::string model;                     // draft pools: model preset / config; else the served model
  std::optional<SpeculativeSpec> speculative;
  std::optional<AfdSpec> afd;

  std::int64_t gpus_per_instance() const { return tp * pp; }
  std::int64_t instances() const { return gpus / gpus_per_instance(); }
};

// A training job sharing the fabric (used by serve --network flows): data-parallel over
// `nodes` whole nodes from `first_node` on, each GPU all-reducing `all_reduce_bytes` of
// gradients with the same local rank on the other nodes (one ring per local rank, as NCCL runs
// one per rail) every `period_s` from `start_s` on.
struct BackgroundTrainingSpec {
  std::int64_t first_node = 0, nodes = 0;
  double all_reduce_bytes = 0;
  double period_s = 0, start_s = 0;
};

// How a prefill instance hands the KV over: whole, once the prefill has ended and the decode
// instance has admitted the request; or layer by layer while the prompt's last prefill
// iteration runs, to a decode instance chosen (and its blocks reserved) when it starts.
enum class KvTransferMode { kWhole, kLayerwise };

struct ServeDeployment {
  std::string source;
  std::vector<PoolSpec> pools;
  RouterPolicy router = RouterPolicy::kLeastOutstanding;
  Dtype dtype = Dtype::kBf16;       // weights and KV cache
  ServeEngine engine = ServeEngine::kVllm;
  double iteration_overhead_s = 0;  // scheduler / launch time added to every iteration
  double iteration_overhead_per_sequence_s = 0;  // and per sequence in the iteration (output processing)
  std::map<std::string, std::string> sources;  // top-level key -> where its number comes from
  std::int64_t prefix_block_tokens = 512;  // tokens per hash_ids entry (Mooncake: 512)
  std::optional<BackgroundTrainingSpec> background_training;
  KvTransferMode kv_transfer = KvTransferMode::kWhole;

  // GPUs the deployment spans from GPU 0: its last pool's end, or the background job's.
  std::int64_t gpu_extent(std::int64_t gpus_per_node) const;

  std::int64_t total_gpus() const;
  const PoolSpec* pool(std::string_view name) const;
};

// Reads and validates a deployment (path or inline JSON). Collects every problem; throws
// InputErrors naming the file and the JSON pointer. `gpus_per_node` checks placement.
ServeDeployment load_serve_deployment(const std::string& source, std::int64_t gpus_per_node,
                                      Diagnostics& diag);

}  // namespace clustersim
