#include "calibrate/least_squares.hpp"

#include <algorithm>

namespace clustersim::calibrate {

Eigen::VectorXd weighted_least_squares(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                       const Eigen::VectorXd& weights) {
  Eigen::VectorXd sqrt_w = weights.cwiseSqrt();
  Eigen::MatrixXd xw = sqrt_w.asDiagonal() * x;
  Eigen::VectorXd yw = sqrt_w.cwiseProduct(y);
  return xw.colPivHouseholderQr().solve(yw);
}

Eigen::VectorXd nonnegative_relative_least_squares(const Eigen::MatrixXd& x,
                                                   const Eigen::VectorXd& y,
                                                   const std::vector<int>& free_sign,
                                                   const Eigen::VectorXd& extra_weights) {
  const Eigen::Index n_features = x.cols();
  Eigen::VectorXd weights = y.cwiseAbs2().cwiseInverse();
  if (extra_weights.size() == weights.size()) weights = weights.cwiseProduct(extra_weights);
  std::vector<bool> active(static_cast<std::size_t>(n_features), true);
  Eigen::VectorXd full = Eigen::VectorXd::Zero(n_features);
  for (Eigen::Index round = 0; round <= n_features; ++round) {
    std::vector<Eigen::Index> columns;
    for (Eigen::Index j = 0; j < n_features; ++j) {
      if (active[static_cast<std::size_t>(j)]) columns.push_back(j);
    }
    full.setZero();
    if (columns.empty()) return full;
    Eigen::MatrixXd sub(x.rows(), static_cast<Eigen::Index>(columns.size()));
    for (std::size_t c = 0; c < columns.size(); ++c) sub.col(static_cast<Eigen::Index>(c)) = x.col(columns[c]);
    Eigen::VectorXd coef = weighted_least_squares(sub, y, weights);
    // Drop the most negative constrained coefficient, if any, and refit.
    Eigen::Index worst = -1;
    double worst_value = 0;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      full(columns[c]) = coef(static_cast<Eigen::Index>(c));
      bool constrained = std::find(free_sign.begin(), free_sign.end(), columns[c]) == free_sign.end();
      if (constrained && coef(static_cast<Eigen::Index>(c)) < worst_value) {
        worst_value = coef(static_cast<Eigen::Index>(c));
        worst = columns[c];
      }
    }
    if (worst < 0) return full;
    active[static_cast<std::size_t>(worst)] = false;
  }
  return full;
}

Eigen::VectorXd nonnegative_relative_least_absolute(const Eigen::MatrixXd& x,
                                                    const Eigen::VectorXd& y,
                                                    const std::vector<int>& free_sign) {
  constexpr int kIterations = 30;
  constexpr double kFloor = 1e-6;  // residuals below this count as this (keeps weights finite)
  Eigen::VectorXd c = nonnegative_relative_least_squares(x, y, free_sign);
  Eigen::VectorXd w(y.size());
  for (int it = 0; it < kIterations; ++it) {
    Eigen::VectorXd relative = ((x * c - y).array() / y.array()).abs().matrix();
    for (Eigen::Index i = 0; i < y.size(); ++i) w(i) = 1.0 / std::max(relative(i), kFloor);
    Eigen::VectorXd next = nonnegative_relative_least_squares(x, y, free_sign, w);
    if ((next - c).norm() <= 1e-12 * std::max(1.0, c.norm())) return next;
    c = next;
  }
  return c;
}

}  // namespace clustersim::calibrate
