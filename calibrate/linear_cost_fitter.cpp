#include "calibrate/linear_cost_fitter.hpp"

#include "models/cost/cost_forms.hpp"
#include "calibrate/fit_quality.hpp"
#include "calibrate/least_squares.hpp"

namespace clustersim::calibrate {

std::vector<double> fit_linear_coefficients(const std::vector<LinearPoint>& points,
                                            const std::vector<int>& free_sign) {
  const auto rows = static_cast<Eigen::Index>(points.size());
  const auto cols = static_cast<Eigen::Index>(points.front().features.size());
  Eigen::MatrixXd x(rows, cols);
  Eigen::VectorXd y(rows);
  for (Eigen::Index r = 0; r < rows; ++r) {
    const auto& p = points[static_cast<std::size_t>(r)];
    for (Eigen::Index c = 0; c < cols; ++c) x(r, c) = p.features[static_cast<std::size_t>(c)];
    y(r) = p.time_s;
  }
  Eigen::VectorXd c = nonnegative_relative_least_absolute(x, y, free_sign);
  return {c.data(), c.data() + c.size()};
}

LinearCostFit fit_linear_cost(const std::vector<LinearPoint>& points,
                              const std::vector<int>& free_sign) {
  LinearCostFit fit;
  fit.coefficients = fit_linear_coefficients(points, free_sign);
  fit.error = fit_error_over(
      points, fit.coefficients, points.front().features.size(),
      [&](const std::vector<LinearPoint>& rest) { return fit_linear_coefficients(rest, free_sign); },
      [](const std::vector<double>& c, const LinearPoint& p) { return linear_form(c, p.features); });
  return fit;
}

}  // namespace clustersim::calibrate
