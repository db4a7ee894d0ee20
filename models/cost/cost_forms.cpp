#include "models/cost/cost_forms.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/accounting/integer_division.hpp"

namespace clustersim {

const AlphaBetaSegment& alpha_beta_segment(const std::vector<AlphaBetaSegment>& segments, double size_bytes) {
  const AlphaBetaSegment* use = &segments.front();
  for (const auto& s : segments) {
    if (size_bytes >= s.min_size_bytes) use = &s;
  }
  return *use;
}

double alpha_beta_time_s(const std::vector<AlphaBetaSegment>& segments, double size_bytes) {
  const AlphaBetaSegment& use = alpha_beta_segment(segments, size_bytes);
  return use.latency_s + use.seconds_per_byte * size_bytes;
}

std::int64_t gemm_waves(const GemmShapeDims& s, GemmTile tile, std::int64_t sm_count) {
  std::int64_t tiles = ceil_div(s.m, tile.m) * ceil_div(s.n, tile.n) * s.batch * tile.split_k;
  return ceil_div(tiles, sm_count);
}

double gemm_compute_s(const GemmShapeDims& s, GemmTile tile, const GemmFitParameters& p) {
  double tile_flops = 2.0 * static_cast<double>(tile.m) * static_cast<double>(tile.n) *
                      static_cast<double>(ceil_div(s.k, tile.split_k));
  return static_cast<double>(gemm_waves(s, tile, p.sm_count)) *
         (tile_flops / p.sm_flops_per_s + p.wave_s);
}

double gemm_bytes(const GemmShapeDims& s, double input_bytes_per_element,
                  double output_bytes_per_element) {
  double m = s.m, n = s.n, k = s.k, b = s.batch;
  return b * ((m * k + k * n) * input_bytes_per_element + m * n * output_bytes_per_element);
}

const std::vector<GemmTile>& gemm_tile_candidates() {
  static const std::vector<GemmTile> kTiles = [] {
    std::vector<GemmTile> out;
    for (GemmTile t : {GemmTile{64, 64}, GemmTile{64, 128}, GemmTile{128, 64}, GemmTile{128, 128},
                       GemmTile{128, 256}, GemmTile{256, 128}, GemmTile{64, 256}, GemmTile{256, 64}}) {
      for (std::int64_t split : {1, 2, 4, 8}) out.push_back({t.m, t.n, split});
    }
    return out;
  }();
  return kTiles;
}

double gemm_time_s(const GemmShapeDims& s, const GemmTile* tile, double input_bytes_per_element,
                   double output_bytes_per_element, const GemmFitParameters& p) {
  if (!tile && p.tile) tile = &*p.tile;
  double compute_s = std::numeric_limits<double>::infinity();
  if (tile) {
    compute_s = gemm_compute_s(s, *tile, p);
  } else {
    for (const auto& t : gemm_tile_candidates()) compute_s = std::min(compute_s, gemm_compute_s(s, t, p));
  }
  const double bytes = gemm_bytes(s, input_bytes_per_element, output_bytes_per_element);
  const bool packed = p.packing_bytes_per_s > 0 && s.m > 1 && s.n > 1;  // GEMV is not packed
  const double packing_s = packed ? bytes / p.packing_bytes_per_s : 0.0;
  return p.launch_s + std::max(compute_s, bytes / p.memory_bytes_per_s) + packing_s;
}

double attention_forward_flops(std::int64_t batch, std::int64_t heads, std::int64_t seq_q,
                               std::int64_t seq_kv, std::int64_t head_dim, bool causal) {
  double flops = 4.0 * static_cast<double>(batch) * static_cast<double>(heads) *
                 static_cast<double>(seq_q) * static_cast<double>(seq_kv) *
                 static_cast<double>(head_dim);
  return causal ? flops / 2.0 : flops;
}

double attention_pass_flops(const AttentionRecord& a) {
  double forward = attention_forward_flops(a.batch, a.heads, a.seq_q, a.seq_kv, a.head_dim,
                                           a.causal && a.pass != AttentionPass::kDecode);
  switch (a.pass) {
    case AttentionPass::kBackward:
      return 2.5 * forward;
    case AttentionPass::kForwardBackward:
      return 3.5 * forward;
    case AttentionPass::kForward:
    case AttentionPass::kDecode:
      return forward;
  }
  return forward;
}

double decode_kv_bytes(const AttentionRecord& a) {
  return 2.0 * static_cast<double>(a.batch) * static_cast<double>(a.seq_kv) *
         static_cast<double>(a.kv_heads) * static_cast<double>(a.head_dim) * bytes_per_element(a.dtype);
}

double saturating_time_s(const SaturatingEfficiency& e, double flops, double seq_kv) {
  return flops * (e.inverse_peak_s_per_flop + e.half_saturation_s_per_flop_token / seq_kv);
}

double linear_form(const std::vector<double>& coefficients, const std::vector<double>& features) {
  double t = 0;
  for (std::size_t i = 0; i < coefficients.size() && i < features.size(); ++i) {
    t += coefficients[i] * features[i];
  }
  return t;
}

ExchangeBytes exchange_bytes(double bytes_per_rank, double imbalance, int ranks, int gpus_per_node) {
  if (ranks <= 1) return {};
  const double local = std::min(ranks, gpus_per_node);
  const double bytes = bytes_per_rank * imbalance;
  return {bytes * (local - 1) / ranks, bytes * (ranks - local) / ranks};
}

std::vector<double> all_to_all_features(double bytes_per_rank, double imbalance, int ranks,
                                        int gpus_per_node) {
  double local = std::min(ranks, gpus_per_node);
  double remote_share = ranks > 0 ? (ranks - local) / static_cast<double>(ranks) : 0.0;
  double bytes = bytes_per_rank * imbalance;
  return {1.0, bytes * (1.0 - remote_share), bytes * remote_share, bytes * remote_share * remote_share};
}

std::vector<double> overlap_features(double gemm_alone_s, double comm_alone_s) {
  return {std::max(gemm_alone_s, comm_alone_s), std::min(gemm_alone_s, comm_alone_s)};
}

}  // namespace clustersim
