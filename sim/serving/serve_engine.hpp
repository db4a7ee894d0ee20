#pragma once
// Request-level serving simulation: one iteration-level event loop over all instances of a
// deployment (docs/serve.md). Each instance runs one batch at a time; its scheduler (vLLM:
// paged KV blocks, watermark, prefill-first, preemption by recompute; Sarathi: decode-first
// with prefill chunks up to a token budget) forms the batch, IterationCost prices it. Prefill
// instances hand requests and their KV to decode instances through a transfer model; target
// instances decode speculatively with a paired draft instance; attention instances decode with
// ping-pong micro-batches against an expert pool (serve_afd.hpp). Under DistServe's engine
// (ServeEngine::kDistServe) decode instances accept hand-offs between their iterations, migrate
// them while busy, and swap requests out instead of recomputing them (docs/serve.md, "Engines").
//
// Inter-instance bytes (KV hand-off, draft/target sync, M2N) are, with ServeNetworkMode::
// kClosedForm, priced by the CostModel's send/recv fit with a contention approximation: each
// instance has one egress and one ingress channel, and transfers sharing a channel are served
// first come, first served. With kFlows they are flows on the cluster's rail fat-tree
// (serve_network.hpp), the engine driving the flow simulation live from inside it, in a child
// process (docs/serve.md, "Network").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "traces/chrome_trace_writer.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/cost/cost_model.hpp"
#include "models/inputs/model_spec.hpp"
#include "sim/serving/serve_cost.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "models/inputs/serve_workload.hpp"
#include "sim/serving/serve_network.hpp"

namespace clustersim::sim {

struct RequestOutcome {
  double arrival_s = 0;
  double ttft_s = 0;  // to the first output token
  double tpot_s = 0;  // mean time per output token after the first
  double e2e_s = 0;
  std::int32_t input_tokens = 0, output_tokens = 0;
  std::int32_t cached_tokens = 0;  // prefix-cache hits
  std::int32_t preemptions = 0;
  bool finished = false;
};

struct PoolOutcome {
  std::string name;
  PoolRole role = PoolRole::kColocated;
  std::int64_t instances = 0, gpus = 0;
  double busy_share = 0;           // mean share of time instances ran a batch
  double kv_utilisation_mean = 0;  // time-weighted share of KV blocks held
  double kv_utilisation_peak = 0;
  std::int64_t kv_blocks_per_instance = 0;
  std::int64_t iterations = 0;
  double mean_batch_tokens = 0;
  double afd_closed_form_s = 0, afd_event_level_s = 0;  // attention pools: mean iteration
  std::int64_t afd_micro_batches = 0;
  // Ids of the measured whole-iteration fits that priced this pool's iterations; empty: composed
  // from kernel prices (GEMM, attention, collectives, memory-bound kernels).
  std::vector<std::string> measured_fits;
};

struct ServeOutcome {
  std::vector<RequestOutcome> requests;
  std::vector<PoolOutcome> pools;
  double makespan_s = 0;
  std::int64_t preemptions = 0;
  std::int64_t gpus = 0;
  double kv_transfer_s_mean = 0;
  std::int64_t kv_transfers = 0;
  double prefix_hit_share = 0;  // cached prompt tokens / prompt tokens
  double wall_s = 0;
  // --network flows: transfers simulated as flows, their mean time over what the closed form
  // charges alone, and the background training job's completed all-reduces.
  ServeNetworkMode network = ServeNetworkMode::kClosedForm;
  std::int64_t flows = 0, fabric_gpus = 0;
  double kv_transfer_slowdown_mean = 0;
  std::int64_t background_rounds = 0;
  double background_round_s_mean = 0;
};

struct TraceWindow {
  double begin_s = 0, end_s = 0;
};

class ServeSimulator {
 public:
  // `draft` is the draft model when the deployment has a draft pool (else ignored).
  ServeSimulator(const ModelSpec& model, const ServeDeployment& deployment, const ClusterSpec& cluster,
                 const CostModel& cost, const ModelSpec* draft = nullptr,
                 ServeNetworkMode network = ServeNetworkMode::kClosedForm);
  ~ServeSimulator();

  // Simulates the requests to completion. Reentrant: all run state is local. With
  // ServeNetworkMode::kFlows each call runs in a forked child process (one SimGrid engine each).
  ServeOutcome run(const RequestSet& requests, const TraceWindow* window = nullptr,
                   traces::ChromeTraceWriter* trace = nullptr, std::uint64_t seed = 1) const;

  bool extrapolated() const;
  // Roofline-default fits behind the composed prices (pools priced by measured whole-iteration
  // fits do not use them).
  std::vector<std::string> roofline_bases() const;

 private:
  struct PoolPlan;
  std::vector<bool> measured_costs() const;  // per costs_ entry: its pool prices by measured fits
  // The event loop; transfers priced in closed form when `flows` is null.
  ServeOutcome run_engine(const RequestSet& requests, const TraceWindow* window, traces::ChromeTraceWriter* trace,
                          std::uint64_t seed, ServeFlows* flows) const;
  ServeOutcome run_on_fabric(const RequestSet& requests, const TraceWindow* window, traces::ChromeTraceWriter* trace,
                             std::uint64_t seed) const;
  const ServeDeployment& deployment_;
  ClusterSpec cluster_;
  ServeNetworkMode network_;
  std::int64_t gpus_per_node_;
  std::vector<std::unique_ptr<IterationCost>> costs_;  // per pool (draft pools too)
  std::vector<PoolPlan> plans_;
  double sync_s_ = 0;  // draft/target token exchange
};

}  // namespace clustersim::sim
