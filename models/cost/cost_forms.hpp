#pragma once
// The functional forms of the fitted cost models, as small pure functions. Fitters
// (calibrate/) choose their parameters; CostModel evaluates them. Both use these functions,
// so a fit's reported error is the error of exactly what the simulator will compute.
// Derivations: docs/profiles.md.
#include <cstdint>
#include <optional>
#include <vector>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

// --- Collectives: piecewise alpha-beta over message size -------------------------------------
struct AlphaBetaSegment {
  double min_size_bytes = 0;  // the segment applies from here (inclusive) ...
  double latency_s = 0;       // alpha
  double seconds_per_byte = 0;  // 1 / beta
};
// Segments sorted by min_size_bytes; the first applies below its own minimum too.
const AlphaBetaSegment& alpha_beta_segment(const std::vector<AlphaBetaSegment>& segments, double size_bytes);
double alpha_beta_time_s(const std::vector<AlphaBetaSegment>& segments, double size_bytes);

// --- GEMM: roofline with tile and wave quantisation ------------------------------------------
struct GemmShapeDims {
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  bool operator==(const GemmShapeDims&) const = default;
};
struct GemmTile {
  std::int64_t m = 0, n = 0;
  std::int64_t split_k = 1;  // K split across this many CTAs (split-K / stream-K)
};
struct GemmFitParameters {
  GemmFitParameters() = default;
  GemmFitParameters(double launch, double sm_rate, double wave, double memory_bandwidth, std::int64_t sms)
      : launch_s(launch), sm_flops_per_s(sm_rate), wave_s(wave), memory_bytes_per_s(memory_bandwidth), sm_count(sms) {}
  double launch_s = 0;                // t0: fixed cost per call
  double sm_flops_per_s = 0;          // sustained FLOP/s of one SM on one tile
  double wave_s = 0;                  // fixed cost per wave (tile prologue and epilogue)
  double memory_bytes_per_s = 0;      // sustained HBM bandwidth of the whole GPU
  std::int64_t sm_count = 0;
  // A device that runs every GEMM with one tile (a CPU core: 1 x 1, see fit_gemm_cpu) instead
  // of choosing among an autotuned library's candidates. Absent on GPUs.
  std::optional<GemmTile> tile;
  // Packing (CPU): a core copies A and B into its blocked layout and writes C, which does not
  // overlap its multiplying: + gemm_bytes / packing_bytes_per_s, except for a matrix-vector
  // product (M or N = 1), which a library runs unpacked (GEMV). 0: none (GPUs).
  double packing_bytes_per_s = 0;
};
// Waves of `tile` on `sm_count` SMs: ceil(tiles / sms), tiles = ceil(m/BM) ceil(n/BN) batch
// split_k; each tile does ceil(k / split_k) of the reduction.
std::int64_t gemm_waves(const GemmShapeDims& s, GemmTile tile, std::int64_t sm_count);
// Compute time of the quantised work: waves x (one tile's FLOPs / one SM's rate + wave_s).
double gemm_compute_s(const GemmShapeDims& s, GemmTile tile, const GemmFitParameters& p);
// Bytes moved once: A, B and C (C written at `output_bytes_per_element`).
double gemm_bytes(const GemmShapeDims& s, double input_bytes_per_element,
                  double output_bytes_per_element);
// The tile and split-K candidates an autotuned library chooses among when the record does
// not say.
const std::vector<GemmTile>& gemm_tile_candidates();
// t = t0 + max(compute, bytes / BW) [+ bytes / packing bandwidth]; with no tile given, the
// device's tile if it has one, else the fastest candidate tile.
double gemm_time_s(const GemmShapeDims& s, const GemmTile* tile, double input_bytes_per_element,
                   double output_bytes_per_element, const GemmFitParameters& p);

// --- Attention: saturating efficiency in sequence length ------------------------------------
// FLOPs as FlashAttention counts them: forward 4 b h sq skv d, halved when causal (sq == skv);
// backward 2.5x forward; forward+backward 3.5x.
double attention_forward_flops(std::int64_t batch, std::int64_t heads, std::int64_t seq_q,
                               std::int64_t seq_kv, std::int64_t head_dim, bool causal);
// FLOPs of an attention record's pass (decode: forward FLOPs of its new tokens).
double attention_pass_flops(const AttentionRecord& a);
// Bytes of K and V a decode step reads: 2 batch seq_kv kv_heads head_dim bytes(dtype).
double decode_kv_bytes(const AttentionRecord& a);
struct SaturatingEfficiency {
  double inverse_peak_s_per_flop = 0;  // a: 1 / achievable FLOP/s at long sequences
  double half_saturation_s_per_flop_token = 0;  // b: t / flops = a + b / seq
};
// t = flops (a + b / seq_kv)
double saturating_time_s(const SaturatingEfficiency& e, double flops, double seq_kv);

// --- Linear latency-bandwidth forms (decode attention, MoE all-to-all, overlap) -------------
// t = c0 + sum_i c_i x_i
double linear_form(const std::vector<double>& coefficients, const std::vector<double>& features);

// MoE dispatch/combine: features are [1, bytes on NVLink, bytes on the network, bytes on the
// network x f_net], the bytes each rank moves after routing imbalance, f_net = share of peers
// on other nodes. The last term lets the cost of a network byte grow with the share of remote
// peers: every rank receives from more remote senders at once (incast at the NIC).
// What one rank of an expert-parallel all-to-all sends (imbalance included): to the other GPUs
// of its node over NVLink, and to other nodes through its own NIC; its own share stays put.
struct ExchangeBytes {
  double nvlink = 0, network = 0;
};
ExchangeBytes exchange_bytes(double bytes_per_rank, double imbalance, int ranks, int gpus_per_node);
std::vector<double> all_to_all_features(double bytes_per_rank, double imbalance, int ranks,
                                        int gpus_per_node);

// Overlapped GEMM + communication: T_ov = (1 + sigma) max(T_gemm, T_comm) + phi min(...):
// sigma is the slowdown of the longer one (SMs and memory taken by the other), phi the exposed
// share of the shorter one (fill/drain). Perfect overlap: [1, 0]; none: [1, 1].
std::vector<double> overlap_features(double gemm_alone_s, double comm_alone_s);

}  // namespace clustersim
