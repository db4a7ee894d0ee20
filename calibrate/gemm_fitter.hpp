#pragma once
// GEMM time fit: t = t0 + max(waves x tile work / SM rate, bytes / HBM bandwidth), the tile
// and wave quantisation of NVIDIA's GEMM performance guide. When a record names its tile the
// waves are exact; otherwise the candidate tile with the least quantised work is assumed (what
// an autotuned library approaches). Fitted by a coarse grid over (SM rate, bandwidth), then
// refined by least absolute relative error with the compute/memory regime of each point fixed.
#include <optional>
#include <vector>

#include "models/cost/cost_forms.hpp"
#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

struct GemmPoint {
  GemmShapeDims shape;
  std::optional<GemmTile> tile;
  double input_bytes_per_element = 2;
  double output_bytes_per_element = 2;
  double time_s = 0;
};

struct GemmWaveFit {
  GemmFitParameters parameters;
  FitError error;
  bool bandwidth_identified = true;  // false when no point was memory-bound
  bool bandwidth_measured = false;   // the memory term uses the measured bandwidth (not fitted)
};

// `measured_bandwidth` (bytes/s of memory-bound kernels measured on the same GPU, e.g.
// STREAM copy) is the memory term's bandwidth when given: measured independently, and one
// parameter fewer to fit (a GEMM table rarely has more than one memory-bound shape). Without
// it the bandwidth is fitted. The per-wave cost is kept only when the Bayesian information
// criterion says it earns its place.
GemmFitParameters fit_gemm_parameters(const std::vector<GemmPoint>& points, std::int64_t sm_count,
                                      std::optional<double> measured_bandwidth = std::nullopt,
                                      bool* bandwidth_identified = nullptr);
GemmWaveFit fit_gemm_waves(const std::vector<GemmPoint>& points, std::int64_t sm_count,
                           std::optional<double> measured_bandwidth = std::nullopt);

// Fewer points than the four parameters: only the SM rate is fitted (median over points of
// the quantised work over time); no launch or wave cost; the memory term at `bandwidth`.
inline constexpr std::size_t kGemmFullFitPoints = 4;
GemmWaveFit fit_gemm_rate_only(const std::vector<GemmPoint>& points, std::int64_t sm_count,
                               double bandwidth_bytes_per_s);

double predict_gemm_s(const GemmPoint& point, const GemmFitParameters& p);

// CPU cores (a GEMM library on one rank thread, e.g. Eigen): the same form with one SM (the
// thread), a 1 x 1 tile (a core's register block, 8 x 4 floats in Eigen's SSE kernel, quantises
// below what a measurement resolves) and no wave cost, so compute = FLOPs / rate; plus packing,
// + (A + B + C) / packing bandwidth: the core copies A and B into its blocked layout and writes
// C without overlapping its multiplying (why Eigen at M = 16, K = 4096 runs at 55-70 % of its
// rate at M = 256, K = 256); a matrix-vector product (M or N = 1) runs unpacked. The packing term is kept only when the Bayesian information
// criterion says it earns its parameter. With each point's regime fixed the model is linear in
// (t0, 1/rate, 1/packing bandwidth), fitted by least absolute relative error. The memory
// roofline term uses `measured_bandwidth` when given; else there is none
// (kCpuUnboundedBandwidth): records that are all compute-bound do not identify a bandwidth
// (the most bytes per second a record moved is only a lower bound, set by whichever shape
// streams most, and leaving that one record out changes it tenfold).
inline constexpr double kCpuUnboundedBandwidth = 1e15;  // bytes/s: stands for "no memory term"
GemmFitParameters fit_gemm_cpu_parameters(const std::vector<GemmPoint>& points,
                                          std::optional<double> measured_bandwidth = std::nullopt,
                                          bool* bandwidth_identified = nullptr);
GemmWaveFit fit_gemm_cpu(const std::vector<GemmPoint>& points,
                         std::optional<double> measured_bandwidth = std::nullopt);

}  // namespace clustersim::calibrate
