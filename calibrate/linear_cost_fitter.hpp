#pragma once
// Fits t = sum_i c_i x_i with c_i >= 0 by least absolute relative error, with leave-one-out
// error. Used by every cost model that is linear in its parameters: attention efficiency,
// decode attention, MoE all-to-all, overlap.
#include <vector>

#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

struct LinearPoint {
  std::vector<double> features;
  double time_s = 0;
};

struct LinearCostFit {
  std::vector<double> coefficients;
  FitError error;
};

std::vector<double> fit_linear_coefficients(const std::vector<LinearPoint>& points,
                                            const std::vector<int>& free_sign = {});
LinearCostFit fit_linear_cost(const std::vector<LinearPoint>& points,
                              const std::vector<int>& free_sign = {});

}  // namespace clustersim::calibrate
