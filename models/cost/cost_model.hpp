#pragma once
// Prices operations from a profile's fits. Every price says which fit it came from and whether
// it extrapolates (an input outside the fit's range, or a collective shape derived from a fit
// of another shape). Missing fits are an InputError naming the profile, never a silent guess.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/nccl_tuner.hpp"
#include "models/cost/profile.hpp"

namespace clustersim {

// An input of a priced operation beyond the range its fit was measured on.
struct RangeExcess {
  std::string variable;  // the fit's range key: m, n, k, seq_kv, size_bytes, ...
  double value = 0;      // the operation's
  double bound = 0;      // the end of the measured range it lies beyond
  // How far outside, as a factor above 1: value / bound above the range, bound / value below.
  double ratio() const { return value > bound ? value / bound : bound / value; }
};

struct PricedOp {
  double seconds = 0;
  bool extrapolated = false;
  bool roofline_default = false;  // priced by a fit that was not measured
  std::string basis;              // fit id, and how it was applied when not directly
  std::vector<RangeExcess> outside_range = {};  // inputs beyond the fit's measured range
};

// "k 32768 > 28672 (x1.14), m 512 < 1024 (x2.00)"; empty when no input is outside.
std::string describe(const std::vector<RangeExcess>& excess);

class CostModel {
 public:
  // `profile_file` names the profile in error messages.
  CostModel(Profile profile, std::string profile_file, const ClusterSpec& cluster);

  PricedOp gemm(const GemmShapeDims& shape, Dtype dtype, bool grouped = false) const;
  // Forward or backward (FlashAttention FLOP convention), or decode over a KV cache.
  PricedOp attention(const AttentionRecord& shape) const;
  // nccl-tests size convention (measurement_record.hpp). ranks spread evenly over nodes.
  // Across nodes, a measured fit prices it; where the profile has only a roofline default and
  // the cluster gives NCCL's graphs ("nccl"), NCCL's own tuner model does (nccl_tuner.hpp).
  PricedOp collective(CollectiveKind kind, double size_bytes, int ranks, int nodes) const;
  // A tensor-parallel all-reduce of a serving iteration (the attention-output and MLP-output
  // all-reduces of a layer; in decode a few KiB to a few MiB, latency-bound). A measured fit of
  // exactly this shape prices a size inside its measured range; otherwise, when the cluster gives
  // NCCL's graphs, NCCL's tuner model does (Ring/Tree with LL or LL128 at small sizes, NVLS where
  // the node has it); otherwise collective(). docs/serve.md, "TP all-reduces".
  PricedOp tp_all_reduce(double size_bytes, int ranks, int nodes) const;
  // SMs the collective's NCCL kernel holds while it runs (one thread block per channel it
  // launches, NCCL's tuner model); 0 without the cluster's NCCL graphs or for other kinds.
  int collective_sms(CollectiveKind kind, double size_bytes, int ranks, int nodes) const;
  // `nodes`: the nodes the EP group spans (0: its ranks fill nodes of gpus_per_node).
  PricedOp moe_all_to_all(MoePhase phase, double bytes_per_rank, double imbalance, int ranks, int nodes = 0) const;
  // Dispatch or combine priced from the profile's collective fits, when it has no MoE fit.
  PricedOp moe_exchange_from_collectives(double bytes_per_rank, double imbalance, int ranks, int nodes) const;
  // A GEMM and a communication that overlap (tp_comm_overlap and the like).
  PricedOp overlapped(OverlapPattern pattern, double gemm_s, double comm_s) const;
  // Elementwise and normalisation kernels: bytes moved at the measured memory bandwidth.
  // A memory-bound kernel moving `bytes` (read plus written). A `kernel` with a fit of its own
  // ("memory/<kernel>", e.g. Transformer Engine's FP8 cast-transpose) is priced by it; any other,
  // or one its profile did not measure, by the "memory" fit.
  PricedOp memory_bound(double bytes, std::string_view kernel = {}) const;
  // A measured whole-iteration fit (ServeIterationFit) for this model, tensor-parallel degree,
  // phase and dtype (FP16 and BF16 alike), or null: the serving engine then composes the
  // iteration from the kernel prices above.
  const Fit* serve_iteration(const std::string& model, std::int64_t tensor_parallel_size, ServePhase phase,
                             Dtype dtype) const;

  const Profile& profile() const { return profile_; }

 private:
  const Fit* find_collective(CollectiveKind kind, int ranks, int nodes, bool network) const;
  PricedOp scaled_collective(const Fit& fit, CollectiveKind kind, double size_bytes, int ranks,
                             int nodes) const;
  // NCCL's tuner time for an all-reduce, reduce-scatter or all-gather across nodes; nullopt
  // for other kinds or without the cluster's NCCL graphs.
  std::optional<PricedOp> nccl_collective(CollectiveKind kind, double size_bytes, int ranks, int nodes) const;
  std::optional<NcclChoice> nccl_choice(CollectiveKind kind, double size_bytes, int ranks, int nodes) const;
  [[noreturn]] void missing(const std::string& what, const std::string& hint) const;

  Profile profile_;
  std::string file_;
  int gpus_per_node_;
  std::optional<NcclGraphSpec> nccl_;
};

}  // namespace clustersim
