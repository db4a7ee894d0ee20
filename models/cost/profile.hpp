#pragma once
// A profile: the measurements of one GPU type and the cost models fitted from them, each with
// its error and the range of inputs it was fitted on. Format: docs/profiles.md.
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "models/cost/cost_forms.hpp"
#include "models/cost/measurement_record.hpp"

namespace clustersim {

inline constexpr const char* kProfileSchema = "clustersim-profile/1";

struct FitError {
  std::int64_t points = 0;
  double mape = 0;      // mean absolute percentage error in sample, as a fraction
  // Leave-one-out: each point predicted by a fit made without it; absent when there are too
  // few points for that (no more points than parameters).
  std::optional<double> loo_mape;
  double max_ape = 0;   // worst in-sample point
};

// Inputs a fit saw, per variable ("size_bytes", "m", "seq_kv", ...). Outside: extrapolation.
struct FitRange {
  double min = 0, max = 0;
};

// Where a fit's parameters came from. A roofline default is computed from the cluster
// preset's peak numbers, not measured; reports flag it.
enum class FitOrigin { kFitted, kRooflineDefault };
std::string_view to_string(FitOrigin origin);

struct CollectiveFit {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  std::string algorithm = "any";
  int ranks = 0;
  int nodes = 1;
  std::vector<AlphaBetaSegment> segments;
};

struct GemmFit {
  Dtype dtype = Dtype::kBf16;
  GemmFitParameters parameters;
};

// A MoE layer's expert GEMMs in one grouped call, from grouped-GEMM records (implementation
// "grouped:<kernel>"): t = experts x per_expert_s + FLOPs / flops_per_s. The per-expert cost
// is what makes small experts slow (their tiles, prologues and scheduling); dense GEMMs never
// use it.
struct GroupedGemmFit {
  Dtype dtype = Dtype::kBf16;
  double per_expert_s = 0;
  double flops_per_s = 1;
};

struct AttentionFit {
  AttentionPass pass = AttentionPass::kForward;
  bool causal = false;
  std::int64_t head_dim = 0;
  SaturatingEfficiency efficiency;
};

// Decode attention: t = launch_s + kv_bytes * seconds_per_byte.
struct DecodeAttentionFit {
  double launch_s = 0;
  double seconds_per_byte = 0;
};

// MoE dispatch/combine: t = c0 + c1 bytes_nvlink + c2 bytes_network + c3 bytes_network f_net
// (all_to_all_features).
struct AllToAllFit {
  MoePhase phase = MoePhase::kDispatch;
  std::string implementation;
  int gpus_per_node = 8;
  // [latency_s, s_per_byte_nvlink, s_per_byte_network, s_per_byte_network_per_remote_share]
  std::vector<double> coefficients;
};

// Overlapped GEMM + TP communication (overlap_features): coefficients [1 + sigma, phi].
struct OverlapFit {
  OverlapPattern pattern = OverlapPattern::kAllGatherGemm;
  std::string variant;
  std::vector<double> coefficients;
};

// Memory-bound kernels (elementwise, norms, copies): t = alpha + bytes / beta, one segment per
// regime the measurements show (on a CPU: in cache, beyond it). One segment from 0 is the
// plain line t = launch_s + bytes * seconds_per_byte (how profiles write it).
struct MemoryFit {
  std::vector<AlphaBetaSegment> segments;
};

// A whole serving iteration of one model at one tensor-parallel degree (serve_iteration
// records), piecewise in the batch size: on the segment with the largest min_batch <= batch,
//   t = intercept_s + per_token_s * tokens + per_token_squared_s * tokens_squared + per_sequence_s * batch
// with tokens and tokens_squared as in ServeIterationRecord. Prefill fits leave per_sequence_s
// at 0 and decode fits per_token_squared_s (DistServe's forms, docs/profiles.md).
struct ServeIterationSegment {
  std::int64_t min_batch = 1;
  double intercept_s = 0, per_token_s = 0, per_token_squared_s = 0, per_sequence_s = 0;
};

struct ServeIterationFit {
  std::string model;
  std::int64_t tensor_parallel_size = 1;
  ServePhase phase = ServePhase::kPrefill;
  Dtype dtype = Dtype::kFp16;
  std::vector<ServeIterationSegment> segments;  // sorted by min_batch, the first at 1

  const ServeIterationSegment& segment(std::int64_t batch) const {
    std::size_t i = 0;
    while (i + 1 < segments.size() && segments[i + 1].min_batch <= batch) ++i;
    return segments[i];
  }
  double seconds(std::int64_t batch, double tokens, double tokens_squared) const {
    const ServeIterationSegment& s = segment(batch);
    return s.intercept_s + s.per_token_s * tokens + s.per_token_squared_s * tokens_squared +
           s.per_sequence_s * static_cast<double>(batch);
  }
};

using FitModel = std::variant<CollectiveFit, GemmFit, AttentionFit, DecodeAttentionFit,
                              AllToAllFit, OverlapFit, MemoryFit, ServeIterationFit, GroupedGemmFit>;

struct Fit {
  std::string id;  // unique in the profile, e.g. "all_reduce/any/8x1"
  FitOrigin origin = FitOrigin::kFitted;
  FitModel model;
  FitError error;
  std::map<std::string, FitRange> ranges;
  std::vector<std::size_t> records;  // indices into Profile::measurements.records
  std::string note;                  // e.g. why a fit is weak or how a default was derived
};

struct Profile {
  std::string name;  // e.g. "h100"
  std::string gpu;   // e.g. "H100 SXM5 80GB"
  std::string created_by;
  RecordSet measurements;
  std::vector<Fit> fits;
};

// A short name of the fit's model family: "alpha_beta_piecewise", "gemm_wave_roofline",
// "attention_saturating", "decode_attention_linear", "all_to_all_linear", "overlap_linear",
// "memory_linear", "serve_iteration_linear".
std::string_view model_name(const FitModel& model);

}  // namespace clustersim
