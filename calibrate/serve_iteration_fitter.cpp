#include "calibrate/serve_iteration_fitter.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "calibrate/fit_quality.hpp"
#include "calibrate/least_squares.hpp"

namespace clustersim::calibrate {

namespace {

constexpr std::size_t kMinSegmentPoints = 4;  // three coefficients and one point to spare

std::vector<double> features(const ServeIterationPoint& p, ServePhase phase) {
  if (phase == ServePhase::kPrefill) return {1.0, p.tokens, p.tokens_squared};
  return {1.0, p.tokens, static_cast<double>(p.batch)};
}

ServeIterationSegment segment_from(const Eigen::VectorXd& c, ServePhase phase, std::int64_t min_batch) {
  ServeIterationSegment s;
  s.min_batch = min_batch;
  s.intercept_s = c(0);
  s.per_token_s = c(1);
  (phase == ServePhase::kPrefill ? s.per_token_squared_s : s.per_sequence_s) = c(2);
  return s;
}

double predict(const std::vector<ServeIterationSegment>& segments, const ServeIterationPoint& p) {
  ServeIterationFit f;
  f.segments = segments;
  return f.seconds(p.batch, p.tokens, p.tokens_squared);
}

// One segment over the points with min_batch <= batch < end_batch; adds its absolute relative
// error to `cost`.
ServeIterationSegment fit_segment(const std::vector<ServeIterationPoint>& points, ServePhase phase,
                                  std::int64_t min_batch, std::int64_t end_batch, double& cost) {
  std::vector<const ServeIterationPoint*> in;
  for (const auto& p : points) {
    if (p.batch >= min_batch && p.batch < end_batch) in.push_back(&p);
  }
  Eigen::MatrixXd x(static_cast<Eigen::Index>(in.size()), 3);
  Eigen::VectorXd y(static_cast<Eigen::Index>(in.size()));
  for (std::size_t r = 0; r < in.size(); ++r) {
    const auto f = features(*in[r], phase);
    for (Eigen::Index c = 0; c < 3; ++c) x(static_cast<Eigen::Index>(r), c) = f[static_cast<std::size_t>(c)];
    y(static_cast<Eigen::Index>(r)) = in[r]->time_s;
  }
  ServeIterationSegment s = segment_from(nonnegative_relative_least_absolute(x, y), phase, min_batch);
  for (const auto* p : in) cost += std::abs(predict({s}, *p) - p->time_s) / p->time_s;
  return s;
}

// As alpha_beta_fitter: BIC for Laplace relative residuals, a mean below 0.1 % counted as 0.1 %.
double information_criterion(double cost, std::size_t points, int segments) {
  const double n = static_cast<double>(points);
  const double mean = std::max(cost / n, 1e-3);
  return 2.0 * n * std::log(mean) + (4.0 * segments - 1.0) * std::log(n);
}

std::vector<ServeIterationSegment> fit_segments(const std::vector<ServeIterationPoint>& points, ServePhase phase) {
  constexpr std::int64_t kAll = INT64_MAX;
  double cost = 0;
  std::vector<ServeIterationSegment> best{fit_segment(points, phase, 1, kAll, cost)};
  best.front().min_batch = 1;
  double best_ic = information_criterion(cost, points.size(), 1);
  std::set<std::int64_t> batches;
  for (const auto& p : points) batches.insert(p.batch);
  for (std::int64_t split : batches) {
    const auto below = static_cast<std::size_t>(
        std::count_if(points.begin(), points.end(), [&](const ServeIterationPoint& p) { return p.batch < split; }));
    if (below < kMinSegmentPoints || points.size() - below < kMinSegmentPoints) continue;
    double c = 0;
    std::vector<ServeIterationSegment> two{fit_segment(points, phase, 1, split, c),
                                           fit_segment(points, phase, split, kAll, c)};
    const double ic = information_criterion(c, points.size(), 2);
    if (ic < best_ic) {
      best_ic = ic;
      best = std::move(two);
    }
  }
  return best;
}

}  // namespace

ServeIterationFitResult fit_serve_iteration(const std::vector<ServeIterationPoint>& points, ServePhase phase) {
  ServeIterationFitResult r;
  if (points.size() < kMinSegmentPoints) return r;
  r.segments = fit_segments(points, phase);
  r.error = fit_error_over(
      points, r.segments, 3 * r.segments.size(),
      [&](const std::vector<ServeIterationPoint>& rest) {
        return rest.size() < kMinSegmentPoints ? r.segments : fit_segments(rest, phase);
      },
      [](const std::vector<ServeIterationSegment>& s, const ServeIterationPoint& p) { return predict(s, p); });
  return r;
}

}  // namespace clustersim::calibrate
