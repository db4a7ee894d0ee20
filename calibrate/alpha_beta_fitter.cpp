#include "calibrate/alpha_beta_fitter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "calibrate/fit_quality.hpp"
#include "calibrate/least_squares.hpp"

namespace clustersim::calibrate {

namespace {

struct SegmentFit {
  double latency_s = 0, seconds_per_byte = 0;
  double cost = std::numeric_limits<double>::infinity();  // sum of absolute relative residuals
};

SegmentFit fit_segment(const std::vector<SizeTimePoint>& p, std::size_t first, std::size_t last) {
  const auto rows = static_cast<Eigen::Index>(last - first + 1);
  Eigen::MatrixXd x(rows, 2);
  Eigen::VectorXd y(rows);
  for (Eigen::Index r = 0; r < rows; ++r) {
    const auto& pt = p[first + static_cast<std::size_t>(r)];
    x(r, 0) = 1.0;
    x(r, 1) = pt.size_bytes;
    y(r) = pt.time_s;
  }
  Eigen::VectorXd c = nonnegative_relative_least_absolute(x, y);
  SegmentFit s{c(0), c(1), 0.0};
  for (Eigen::Index r = 0; r < rows; ++r) s.cost += std::abs((c(0) + c(1) * x(r, 1) - y(r)) / y(r));
  return s;
}

// Bayesian information criterion for Laplace-distributed relative residuals (the fit
// minimises their absolute sum); a mean residual below 0.1 % counts as 0.1 % so that
// noise-free data does not buy segments for free.
double information_criterion(double cost, std::size_t points, int segments) {
  double n = static_cast<double>(points);
  double mean = std::max(cost / n, 1e-3);
  int parameters = 3 * segments - 1;
  return 2.0 * n * std::log(mean) + parameters * std::log(n);
}

}  // namespace

std::vector<AlphaBetaSegment> fit_alpha_beta_segments(std::vector<SizeTimePoint> points) {
  std::sort(points.begin(), points.end(),
            [](const SizeTimePoint& a, const SizeTimePoint& b) { return a.size_bytes < b.size_bytes; });
  const std::size_t n = points.size();
  const std::size_t min_points = static_cast<std::size_t>(kMinPointsPerSegment);
  if (n < 2 * min_points) {
    SegmentFit s = fit_segment(points, 0, n - 1);
    return {{points.front().size_bytes, s.latency_s, s.seconds_per_byte}};
  }
  // seg[i][j]: best single segment over points i..j.
  std::vector<std::vector<SegmentFit>> seg(n, std::vector<SegmentFit>(n));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + min_points - 1; j < n; ++j) seg[i][j] = fit_segment(points, i, j);
  }
  const int max_k = std::min<int>(kMaxAlphaBetaSegments, static_cast<int>(n / min_points));
  const double inf = std::numeric_limits<double>::infinity();
  // best[k][j]: cost of points 0..j in k segments; from[k][j]: first point of the last one.
  std::vector<std::vector<double>> best(max_k + 1, std::vector<double>(n, inf));
  std::vector<std::vector<std::size_t>> from(max_k + 1, std::vector<std::size_t>(n, 0));
  for (std::size_t j = min_points - 1; j < n; ++j) best[1][j] = seg[0][j].cost;
  for (int k = 2; k <= max_k; ++k) {
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 1; i + min_points - 1 <= j; ++i) {
        double c = best[k - 1][i - 1] + seg[i][j].cost;
        if (c < best[k][j]) {
          best[k][j] = c;
          from[k][j] = i;
        }
      }
    }
  }
  int chosen = 1;
  for (int k = 2; k <= max_k; ++k) {
    if (information_criterion(best[k][n - 1], n, k) < information_criterion(best[chosen][n - 1], n, chosen)) {
      chosen = k;
    }
  }
  std::vector<AlphaBetaSegment> segments;
  std::size_t end = n - 1;
  for (int k = chosen; k >= 1; --k) {
    std::size_t start = k == 1 ? 0 : from[k][end];
    const SegmentFit& s = seg[start][end];
    // A segment starts halfway (geometrically) between its first point and the previous one.
    double min_size = start == 0 ? points[0].size_bytes
                                 : std::sqrt(points[start - 1].size_bytes * points[start].size_bytes);
    segments.push_back({min_size, s.latency_s, s.seconds_per_byte});
    if (start == 0) break;
    end = start - 1;
  }
  std::reverse(segments.begin(), segments.end());
  return segments;
}

std::vector<std::size_t> non_monotone_points(const std::vector<SizeTimePoint>& points) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (const auto& other : points) {
      if (other.size_bytes > points[i].size_bytes &&
          points[i].time_s > kNonMonotoneFactor * other.time_s) {
        out.push_back(i);
        break;
      }
    }
  }
  return out;
}

AlphaBetaFit fit_piecewise_alpha_beta(const std::vector<SizeTimePoint>& all_points) {
  AlphaBetaFit fit;
  fit.excluded = non_monotone_points(all_points);
  std::vector<SizeTimePoint> points;
  for (std::size_t i = 0; i < all_points.size(); ++i) {
    if (std::find(fit.excluded.begin(), fit.excluded.end(), i) == fit.excluded.end()) {
      points.push_back(all_points[i]);
    }
  }
  fit.segments = fit_alpha_beta_segments(points);
  fit.error = fit_error_over(
      points, fit.segments, 2, [](const std::vector<SizeTimePoint>& rest) { return fit_alpha_beta_segments(rest); },
      [](const std::vector<AlphaBetaSegment>& s, const SizeTimePoint& p) { return alpha_beta_time_s(s, p.size_bytes); });
  return fit;
}

}  // namespace clustersim::calibrate
