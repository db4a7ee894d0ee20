#include "calibrate/gemm_fitter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "calibrate/fit_quality.hpp"
#include "calibrate/least_squares.hpp"

namespace clustersim::calibrate {

namespace {

constexpr int kRateSteps = 80;
constexpr int kBandwidthSteps = 50;
constexpr int kWaveSteps = 12;      // 0, then 0.1 us .. 20 us
constexpr double kGridSpan = 40.0;  // rates searched from half the best observed to 20x it
constexpr int kRefinements = 30;

// One way to run a point: its waves and the FLOPs of one SM's share (waves x tile FLOPs).
struct Option {
  double waves = 0, sm_flops = 0;
};

// What the fit needs of a point, precomputed: the ways to run it that are not dominated by
// another (fewer waves and less work), and its bytes.
struct PreparedPoint {
  std::vector<Option> options;
  double bytes = 0, time_s = 0;
};

std::vector<PreparedPoint> prepare(const std::vector<GemmPoint>& points, std::int64_t sm_count) {
  const GemmFitParameters unit{0, 1.0, 0.0, 1.0, sm_count};
  std::vector<PreparedPoint> out;
  for (const auto& pt : points) {
    PreparedPoint p;
    p.bytes = gemm_bytes(pt.shape, pt.input_bytes_per_element, pt.output_bytes_per_element);
    p.time_s = pt.time_s;
    std::vector<GemmTile> tiles = pt.tile ? std::vector<GemmTile>{*pt.tile} : gemm_tile_candidates();
    std::vector<Option> all;
    for (const auto& t : tiles) {
      all.push_back({static_cast<double>(gemm_waves(pt.shape, t, sm_count)), gemm_compute_s(pt.shape, t, unit)});
    }
    for (const auto& o : all) {
      bool dominated = std::any_of(all.begin(), all.end(), [&](const Option& q) {
        return q.waves <= o.waves && q.sm_flops <= o.sm_flops && (q.waves < o.waves || q.sm_flops < o.sm_flops);
      });
      bool duplicate = std::any_of(p.options.begin(), p.options.end(), [&](const Option& q) {
        return q.waves == o.waves && q.sm_flops == o.sm_flops;
      });
      if (!dominated && !duplicate) p.options.push_back(o);
    }
    out.push_back(std::move(p));
  }
  return out;
}

// The option the model runs with these parameters, and its compute time.
std::pair<const Option*, double> fastest(const PreparedPoint& p, const GemmFitParameters& g) {
  const Option* best = nullptr;
  double best_s = std::numeric_limits<double>::infinity();
  for (const auto& o : p.options) {
    double s = o.sm_flops / g.sm_flops_per_s + o.waves * g.wave_s;
    if (s < best_s) {
      best_s = s;
      best = &o;
    }
  }
  return {best, best_s};
}

double body_s(const PreparedPoint& p, const GemmFitParameters& g) {
  return std::max(fastest(p, g).second, p.bytes / g.memory_bytes_per_s);
}

double relative_l1(const std::vector<PreparedPoint>& points, const GemmFitParameters& g) {
  double cost = 0;
  for (const auto& p : points) cost += std::abs(g.launch_s + body_s(p, g) - p.time_s) / p.time_s;
  return cost;
}

// Launch time minimising relative squared error for fixed other parameters, clamped at 0.
double best_launch(const std::vector<PreparedPoint>& points, const GemmFitParameters& g) {
  double num = 0, den = 0;
  for (const auto& p : points) {
    double w = 1.0 / (p.time_s * p.time_s);
    num += w * (p.time_s - body_s(p, g));
    den += w;
  }
  return std::max(0.0, num / den);
}

bool memory_bound(const PreparedPoint& p, const GemmFitParameters& g) {
  return p.bytes / g.memory_bytes_per_s > fastest(p, g).second;
}

}  // namespace

double predict_gemm_s(const GemmPoint& point, const GemmFitParameters& p) {
  const GemmTile* tile = point.tile ? &*point.tile : nullptr;
  return gemm_time_s(point.shape, tile, point.input_bytes_per_element,
                     point.output_bytes_per_element, p);
}

namespace {

// The search; with `fixed_bandwidth` the memory term keeps that bandwidth.
GemmFitParameters search(const std::vector<PreparedPoint>& points, std::int64_t sm_count,
                         std::optional<double> fixed_bandwidth, bool with_wave_cost) {
  double rate_seen = 0, bandwidth_seen = 0;
  for (const auto& p : points) {
    double least_work = std::numeric_limits<double>::infinity();
    for (const auto& o : p.options) least_work = std::min(least_work, o.sm_flops);
    rate_seen = std::max(rate_seen, least_work / p.time_s);
    bandwidth_seen = std::max(bandwidth_seen, p.bytes / p.time_s);
  }
  // Coarse grid over (SM rate, wave overhead, bandwidth); launch time in closed form.
  double best_cost = std::numeric_limits<double>::infinity();
  GemmFitParameters best{0, rate_seen, 0.0, bandwidth_seen, sm_count};
  for (int i = 0; i < kRateSteps; ++i) {
    for (int w = 0; w < (with_wave_cost ? kWaveSteps : 1); ++w) {
      for (int j = 0; j < (fixed_bandwidth ? 1 : kBandwidthSteps); ++j) {
        GemmFitParameters g{0, 0.5 * rate_seen * std::pow(kGridSpan, i / double(kRateSteps - 1)),
                            w == 0 ? 0.0 : 1e-7 * std::pow(200.0, (w - 1) / double(kWaveSteps - 2)),
                            fixed_bandwidth ? *fixed_bandwidth
                                            : 0.5 * bandwidth_seen * std::pow(kGridSpan, j / double(kBandwidthSteps - 1)),
                            sm_count};
        g.launch_s = best_launch(points, g);
        double cost = relative_l1(points, g);
        if (cost < best_cost) {
          best_cost = cost;
          best = g;
        }
      }
    }
  }
  // Refine: with each point's option and regime fixed the model is linear in
  // (t0, 1/rate, wave_s, 1/bandwidth).
  for (int round = 0; round < kRefinements; ++round) {
    const auto n = static_cast<Eigen::Index>(points.size());
    Eigen::MatrixXd x = Eigen::MatrixXd::Zero(n, 4);
    Eigen::VectorXd y(n);
    bool compute_seen = false, memory_seen = false;
    for (Eigen::Index i = 0; i < n; ++i) {
      const PreparedPoint& p = points[static_cast<std::size_t>(i)];
      x(i, 0) = 1.0;
      y(i) = p.time_s;
      if (memory_bound(p, best)) {
        if (fixed_bandwidth) {
          y(i) -= p.bytes / *fixed_bandwidth;  // known term; may leave a negative remainder
        } else {
          x(i, 3) = p.bytes;
          memory_seen = true;
        }
      } else {
        const Option* o = fastest(p, best).first;
        x(i, 1) = o->sm_flops;
        x(i, 2) = with_wave_cost ? o->waves : 0.0;
        compute_seen = true;
      }
    }
    if ((y.array() <= 0).any()) break;  // the fixed bandwidth alone overshoots: keep the grid's fit
    Eigen::VectorXd c = nonnegative_relative_least_absolute(x, y);
    GemmFitParameters next = best;
    next.launch_s = c(0);
    if (compute_seen && c(1) > 0) {
      next.sm_flops_per_s = 1.0 / c(1);
      next.wave_s = c(2);
    }
    if (memory_seen && c(3) > 0) next.memory_bytes_per_s = 1.0 / c(3);
    double cost = relative_l1(points, next);
    if (cost >= best_cost * (1 - 1e-12)) break;
    best_cost = cost;
    best = next;
  }
  return best;
}

}  // namespace

GemmFitParameters fit_gemm_parameters(const std::vector<GemmPoint>& raw, std::int64_t sm_count,
                                      std::optional<double> measured_bandwidth,
                                      bool* bandwidth_identified) {
  const std::vector<PreparedPoint> points = prepare(raw, sm_count);
  // With and without a per-wave cost; the Bayesian information criterion (Laplace errors,
  // as for the collective segments) decides whether the extra parameter earns its place.
  GemmFitParameters best;
  double best_criterion = std::numeric_limits<double>::infinity();
  bool identified = false;
  for (bool with_wave_cost : {false, true}) {
    GemmFitParameters g = search(points, sm_count, measured_bandwidth, with_wave_cost);
    bool memory = std::any_of(points.begin(), points.end(), [&](const PreparedPoint& p) { return memory_bound(p, g); });
    double n = static_cast<double>(points.size());
    double mean = std::max(relative_l1(points, g) / n, 1e-3);
    double criterion = 2.0 * n * std::log(mean) + (with_wave_cost ? 4 : 3) * std::log(n);
    if (criterion < best_criterion) {
      best_criterion = criterion;
      best = g;
      identified = memory;
    }
  }
  if (bandwidth_identified) *bandwidth_identified = identified;
  return best;
}

namespace {

GemmFitParameters rate_only(const std::vector<GemmPoint>& raw, std::int64_t sm_count,
                            double bandwidth_bytes_per_s) {
  std::vector<double> rates;
  for (const auto& p : prepare(raw, sm_count)) {
    double least_work = std::numeric_limits<double>::infinity();
    for (const auto& o : p.options) least_work = std::min(least_work, o.sm_flops);
    rates.push_back(least_work / p.time_s);
  }
  std::sort(rates.begin(), rates.end());
  std::size_t n = rates.size();
  double median = n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
  return {0.0, median, 0.0, bandwidth_bytes_per_s, sm_count};
}

}  // namespace

GemmWaveFit fit_gemm_rate_only(const std::vector<GemmPoint>& points, std::int64_t sm_count,
                               double bandwidth_bytes_per_s) {
  GemmWaveFit fit;
  fit.parameters = rate_only(points, sm_count, bandwidth_bytes_per_s);
  fit.bandwidth_identified = false;
  fit.error = fit_error_over(
      points, fit.parameters, 1,
      [&](const std::vector<GemmPoint>& rest) { return rate_only(rest, sm_count, bandwidth_bytes_per_s); },
      [](const GemmFitParameters& g, const GemmPoint& p) { return predict_gemm_s(p, g); });
  return fit;
}

GemmWaveFit fit_gemm_waves(const std::vector<GemmPoint>& points, std::int64_t sm_count,
                           std::optional<double> measured_bandwidth) {
  GemmWaveFit fit;
  fit.parameters = fit_gemm_parameters(points, sm_count, measured_bandwidth, &fit.bandwidth_identified);
  fit.bandwidth_measured = measured_bandwidth.has_value();
  fit.error = fit_error_over(
      points, fit.parameters, 4,
      [&](const std::vector<GemmPoint>& rest) { return fit_gemm_parameters(rest, sm_count, measured_bandwidth); },
      [](const GemmFitParameters& g, const GemmPoint& p) { return predict_gemm_s(p, g); });
  return fit;
}

namespace {

// What the CPU fit needs of a point; a matrix-vector product (M or N = 1) packs nothing.
struct CpuPoint {
  double flops = 0, bytes = 0, time_s = 0, packed_bytes = 0;
};

std::vector<CpuPoint> cpu_points(const std::vector<GemmPoint>& raw) {
  std::vector<CpuPoint> out;
  for (const auto& p : raw) {
    const GemmShapeDims& s = p.shape;
    const double bytes = gemm_bytes(s, p.input_bytes_per_element, p.output_bytes_per_element);
    out.push_back({2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k) *
                       static_cast<double>(s.batch),
                   bytes, p.time_s, s.m > 1 && s.n > 1 ? bytes : 0.0});
  }
  return out;
}

// gemm_time_s of a CPU fit (one SM, a 1 x 1 tile, no wave cost), without the tile loop.
double cpu_time_s(const CpuPoint& p, const GemmFitParameters& g) {
  return g.launch_s + std::max(p.flops / g.sm_flops_per_s, p.bytes / g.memory_bytes_per_s) +
         (g.packing_bytes_per_s > 0 ? p.packed_bytes / g.packing_bytes_per_s : 0.0);
}
bool cpu_memory_bound(const CpuPoint& p, const GemmFitParameters& g) {
  return p.bytes / g.memory_bytes_per_s > p.flops / g.sm_flops_per_s;
}
double cpu_relative_l1(const std::vector<CpuPoint>& points, const GemmFitParameters& g) {
  double cost = 0;
  for (const auto& p : points) cost += std::abs(cpu_time_s(p, g) - p.time_s) / p.time_s;
  return cost;
}

// The best launch time, rate and packing bandwidth (with `packing`) for a fixed memory
// bandwidth: alternately fix each point's regime (compute or memory) and solve the linear fit,
// from every point compute-bound, until the regimes stop changing.
std::optional<GemmFitParameters> cpu_fit_rates(const std::vector<CpuPoint>& points, double bandwidth, bool packing) {
  GemmFitParameters g;
  g.sm_count = 1;
  g.tile = GemmTile{1, 1, 1};
  g.memory_bytes_per_s = bandwidth;
  const auto n = static_cast<Eigen::Index>(points.size());
  const Eigen::Index columns = packing ? 3 : 2;
  std::vector<bool> memory(points.size(), false);
  std::optional<GemmFitParameters> best;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int round = 0; round < kRefinements; ++round) {
    Eigen::MatrixXd x = Eigen::MatrixXd::Zero(n, columns);
    Eigen::VectorXd y(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const CpuPoint& p = points[static_cast<std::size_t>(i)];
      x(i, 0) = 1.0;
      if (packing) x(i, 2) = p.packed_bytes;
      y(i) = p.time_s;
      if (memory[static_cast<std::size_t>(i)]) {
        y(i) -= p.bytes / bandwidth;
      } else {
        x(i, 1) = p.flops;
      }
    }
    if ((y.array() <= 0).any()) break;            // the bandwidth alone overshoots a point
    if (!(x.col(1).array() > 0).any()) break;     // no compute-bound point: no rate
    const Eigen::VectorXd c = nonnegative_relative_least_absolute(x, y);
    if (c(1) <= 0 || (packing && c(2) <= 0)) break;  // an infinite rate; no packing cost
    GemmFitParameters next = g;
    next.launch_s = c(0);
    next.sm_flops_per_s = 1.0 / c(1);
    if (packing) next.packing_bytes_per_s = 1.0 / c(2);
    const double cost = cpu_relative_l1(points, next);
    if (cost < best_cost) {
      best_cost = cost;
      best = next;
    }
    std::vector<bool> regimes;
    for (const auto& p : points) regimes.push_back(cpu_memory_bound(p, next));
    if (regimes == memory) break;
    memory = std::move(regimes);
  }
  return best;
}

struct CpuFit {
  GemmFitParameters parameters;
  std::size_t parameter_count = 0;
  bool bandwidth_identified = false;
};

CpuFit cpu_fit(const std::vector<GemmPoint>& raw, std::optional<double> measured_bandwidth) {
  const std::vector<CpuPoint> points = cpu_points(raw);
  const double bandwidth = measured_bandwidth.value_or(kCpuUnboundedBandwidth);
  const double n = static_cast<double>(points.size());
  CpuFit best;
  double best_criterion = std::numeric_limits<double>::infinity();
  for (bool packing : {false, true}) {
    std::optional<GemmFitParameters> g = cpu_fit_rates(points, bandwidth, packing);
    if (!g) continue;
    const std::size_t k = packing ? 3 : 2;
    const double mean = std::max(cpu_relative_l1(points, *g) / n, 1e-3);
    const double criterion = 2.0 * n * std::log(mean) + static_cast<double>(k) * std::log(n);
    if (criterion < best_criterion) {
      best_criterion = criterion;
      best = {*g, k, std::any_of(points.begin(), points.end(), [&](const CpuPoint& p) { return cpu_memory_bound(p, *g); })};
    }
  }
  if (best.parameter_count == 0) {
    // No fit (too few points): the median rate, no launch cost.
    std::vector<double> rates;
    for (const auto& p : points) rates.push_back(p.flops / p.time_s);
    std::sort(rates.begin(), rates.end());
    best.parameters.sm_count = 1;
    best.parameters.tile = GemmTile{1, 1, 1};
    best.parameters.sm_flops_per_s = rates.empty() ? 1.0 : rates[rates.size() / 2];
    best.parameters.memory_bytes_per_s = bandwidth;
    best.parameter_count = 1;
  }
  return best;
}

}  // namespace

GemmFitParameters fit_gemm_cpu_parameters(const std::vector<GemmPoint>& points,
                                          std::optional<double> measured_bandwidth,
                                          bool* bandwidth_identified) {
  CpuFit f = cpu_fit(points, measured_bandwidth);
  if (bandwidth_identified) *bandwidth_identified = f.bandwidth_identified;
  return f.parameters;
}

GemmWaveFit fit_gemm_cpu(const std::vector<GemmPoint>& points, std::optional<double> measured_bandwidth) {
  const CpuFit f = cpu_fit(points, measured_bandwidth);
  GemmWaveFit fit;
  fit.parameters = f.parameters;
  fit.bandwidth_identified = f.bandwidth_identified;
  fit.bandwidth_measured = measured_bandwidth.has_value();
  fit.error = fit_error_over(
      points, fit.parameters, f.parameter_count,
      [&](const std::vector<GemmPoint>& rest) { return fit_gemm_cpu_parameters(rest, measured_bandwidth); },
      [](const GemmFitParameters& g, const GemmPoint& p) { return predict_gemm_s(p, g); });
  return fit;
}

}  // namespace clustersim::calibrate
