#pragma once
// Error statistics of a fit: in-sample MAPE, worst point, and leave-one-out MAPE.
#include <functional>
#include <vector>

#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

// `predict_without(i)` refits on every point but i and predicts point i; it is called only
// when there are more points than `parameters`.
FitError fit_error(const std::vector<double>& measured_s, const std::vector<double>& predicted_s,
                   std::size_t parameters,
                   const std::function<double(std::size_t left_out)>& predict_without);

// Indices 0..n-1 except `left_out`.
std::vector<std::size_t> all_but(std::size_t n, std::size_t left_out);

// fit_error for a fitter over points with a `time_s` member: `refit(points)` returns fitted
// parameters, `predict(parameters, point)` a time.
template <class Point, class Parameters, class Refit, class Predict>
FitError fit_error_over(const std::vector<Point>& points, const Parameters& fitted,
                        std::size_t parameters, const Refit& refit, const Predict& predict) {
  std::vector<double> measured, predicted;
  for (const auto& p : points) {
    measured.push_back(p.time_s);
    predicted.push_back(predict(fitted, p));
  }
  return fit_error(measured, predicted, parameters, [&](std::size_t left_out) {
    std::vector<Point> rest;
    for (std::size_t i : all_but(points.size(), left_out)) rest.push_back(points[i]);
    return predict(refit(rest), points[left_out]);
  });
}

}  // namespace clustersim::calibrate
