#pragma once
// The closed-form, schedule-aware estimate of one training iteration: every operation of the
// lowered Workload priced by the CostModel, per-micro-batch stage times combined by the
// pipeline schedule (1F1B or interleaved), exposed communication after overlap, the data-
// parallel gradient/parameter tail and the optimizer. Formulas: docs/estimate.md.
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/cost_model.hpp"
#include "models/accounting/memory_estimate.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim {

struct StepBreakdown {
  double compute_s = 0;    // the bottleneck stage's compute over all micro-batches
  double bubble_s = 0;     // pipeline fill and drain
  double optimizer_s = 0;
  double tp_comm_s = 0, cp_comm_s = 0, ep_comm_s = 0, dp_comm_s = 0, pp_comm_s = 0;  // exposed
  double fixed_s = 0;        // per-step host costs: the batch load, gradient clipping
  double variability_s = 0;  // the fleet's slow hosts, speed spread and per-op jitter
  double imbalance_s = 0;    // micro-batches' data (sequence lengths) costing more on the slowest replica
  double interference_s = 0;  // compute slowed by the SMs of the DP collectives running beside it
};

// Per micro-batch, one rank of one stage.
struct StageTimes {
  double forward_s = 0, backward_s = 0;  // including exposed communication
  double compute_s = 0;
  double tp_comm_s = 0, cp_comm_s = 0, ep_comm_s = 0;
  double dp_in_microbatch_s = 0;             // exposed ZeRO-3/FSDP gathers and reductions
  double attention_s = 0;                    // the attention kernels' share of compute_s
  double optimizer_s = 0;                    // once per step
  double step_fixed_s = 0;                   // once per step: gradient clipping
};

// The losses of a synchronous job at scale, each on unless ablated (--ablate): the fleet's
// variability, the per-step fixed costs, and (estimate only: the replay has the real fabric) the
// expected sharing of a stage's NIC by its pipeline transfers and DP collectives.
struct Mechanisms {
  bool variability = true;
  bool data_imbalance = true;
  bool fixed_costs = true;
  bool shared_nics = true;
  // Inter-node collectives the profile has not measured priced by NCCL's tuner model with the
  // cluster's "nccl" graphs (cost_model.hpp); off: by the profile's roofline defaults.
  bool nccl_tuner = true;
  // ECMP hash collisions of pipeline transfers (fabric "routing": "ecmp"): the estimate charges
  // the expected slowest connection's loss, the replay hashes each connection.
  bool ecmp = true;
  // Compute slowed by the SMs the overlapped DP collectives' NCCL kernels hold
  // (iteration_graph.hpp, interference_extra_s).
  bool interference = true;
  // MoE: the plan's routing model and capacity factor (docs/moe.md); ablated, every expert-
  // parallel rank gets its balanced share (moe_routing_imbalance still applies).
  bool moe_routing = true;
};

// Every mechanism by its --ablate name, in the order --by-mechanism turns them on one at a time:
// the prices first (NCCL's tuner, the per-step fixed costs), then the fabric and the SMs, then
// the routing and the fleet's draws.
struct MechanismName {
  const char* name;
  bool Mechanisms::*on;
};
inline constexpr std::array<MechanismName, 8> kMechanismNames = {{
    {"nccl_tuner", &Mechanisms::nccl_tuner},
    {"fixed_costs", &Mechanisms::fixed_costs},
    {"ecmp", &Mechanisms::ecmp},
    {"shared_nics", &Mechanisms::shared_nics},
    {"interference", &Mechanisms::interference},
    {"moe_routing", &Mechanisms::moe_routing},
    {"data_imbalance", &Mechanisms::data_imbalance},
    {"variability", &Mechanisms::variability},
}};

struct TrainingEstimate {
  double step_time_s = 0;
  double tokens_per_s = 0;
  double tokens_per_s_per_gpu = 0;
  double tflops_per_gpu = 0;  // model FLOPs (no recomputation)
  double mfu = 0;             // against the GPU's dense 16-bit peak
  double hfu = 0;             // hardware FLOPs (recomputation included)
  double memory_per_gpu_bytes = 0;  // the peak stage
  bool fits_in_memory = false;
  StepBreakdown breakdown;
  std::vector<StageTimes> stages;
  // Packed documents (Workload::documents): the bottleneck stage's attention share of a
  // micro-batch's forward and backward; 0 without them.
  double document_attention_share = 0;
  int priced_ops = 0;
  int extrapolated_ops = 0;  // priced outside a fit's range or derived from another shape
  int roofline_ops = 0;      // priced by a roofline default
};

// Prices already computed, by operation shape; a search over many plans shares one.
class PriceCache {
 public:
  const PricedOp* find(const WorkOp& op) const;
  void insert(const WorkOp& op, const PricedOp& price);
  std::size_t size() const { return prices_.size(); }

 private:
  using Key = std::array<double, 16>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  static Key key_of(const WorkOp& op);
  std::unordered_map<Key, PricedOp, KeyHash> prices_;
};

// One call of an operation (not multiplied by its count), before any overlap.
PricedOp price_op(const WorkOp& op, const CostModel& costs);

// The index of the pipeline stage whose forward + backward per micro-batch is longest.
std::size_t bottleneck_stage(const TrainingEstimate& estimate);

// The two halves of estimate_training: every stage's prices per micro-batch (stages and the
// priced-operation counts), then the step as the schedule runs them (step time, breakdown,
// throughput, memory verdict).
TrainingEstimate price_training_stages(const Workload& workload, const CostModel& costs, PriceCache* cache = nullptr);
// `breakdown` false: the step time and throughput only (a search ranking plans), no attribution.
void schedule_training(TrainingEstimate& priced, const Workload& workload, const CostModel& costs,
                       const ClusterSpec& cluster, const MemoryEstimate& memory, const Mechanisms& mechanisms = {},
                       bool breakdown = true);

// A step time no schedule of these prices can beat: for each stage, the first micro-batch's way
// to it and back, and its own work (m micro-batches of forward and backward at the fleet's
// expected factors, blocking sends, its fixed host work and optimizer) in a row.
double step_time_lower_bound(const TrainingEstimate& priced, const Workload& workload, const CostModel& costs,
                             const ClusterSpec& cluster, const Mechanisms& mechanisms = {});

TrainingEstimate estimate_training(const Workload& workload, const CostModel& costs,
                                   const ClusterSpec& cluster, const MemoryEstimate& memory,
                                   PriceCache* cache = nullptr, const Mechanisms& mechanisms = {});

// The stage times the schedule runs with these mechanisms: without fixed costs, no clipping.
std::vector<StageTimes> scheduled_stage_times(const std::vector<StageTimes>& stages, const Mechanisms& mechanisms);

// Fraction of a 1F1B pipeline that is bubble with uniform stages: (p-1)/(m+p-1); with v
// interleaved model chunks per rank, (p-1)/(v m + p - 1).
double pipeline_bubble_fraction(std::int64_t stages, std::int64_t microbatches, std::int64_t virtual_stages);

}  // namespace clustersim
