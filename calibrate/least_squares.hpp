#pragma once
// Weighted linear least squares, the building block of every fitter.
#include <Eigen/Dense>
#include <vector>

namespace clustersim::calibrate {

// Coefficients c minimising sum_i w_i (x_i . c - y_i)^2. Rows of `x` are the points.
Eigen::VectorXd weighted_least_squares(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                       const Eigen::VectorXd& weights);

// Fits y ~ x . c minimising squared relative error (weights 1 / y^2), then drops any feature
// whose coefficient came out negative (a negative latency or cost per byte has no physical
// meaning) and refits, until all kept coefficients are >= 0. Dropped coefficients are 0.
// Columns listed in `free_sign` may stay negative. `extra_weights` (empty: all 1) multiply
// the relative weights, e.g. for iteratively reweighted fits.
Eigen::VectorXd nonnegative_relative_least_squares(const Eigen::MatrixXd& x,
                                                   const Eigen::VectorXd& y,
                                                   const std::vector<int>& free_sign = {},
                                                   const Eigen::VectorXd& extra_weights = {});

// Minimises the sum of absolute relative errors (the MAPE a fit is judged by) under the same
// sign rules, by iteratively reweighted least squares; robust to a few wild points.
Eigen::VectorXd nonnegative_relative_least_absolute(const Eigen::MatrixXd& x,
                                                    const Eigen::VectorXd& y,
                                                    const std::vector<int>& free_sign = {});

}  // namespace clustersim::calibrate
