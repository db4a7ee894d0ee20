#include "calibrate/fit_quality.hpp"

#include <algorithm>
#include <cmath>

namespace clustersim::calibrate {

FitError fit_error(const std::vector<double>& measured_s, const std::vector<double>& predicted_s,
                   std::size_t parameters,
                   const std::function<double(std::size_t left_out)>& predict_without) {
  FitError e;
  const std::size_t n = measured_s.size();
  e.points = static_cast<std::int64_t>(n);
  if (n == 0) return e;
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double ape = std::abs(predicted_s[i] - measured_s[i]) / measured_s[i];
    sum += ape;
    e.max_ape = std::max(e.max_ape, ape);
  }
  e.mape = sum / static_cast<double>(n);
  if (n > parameters) {
    double loo = 0;
    for (std::size_t i = 0; i < n; ++i) {
      loo += std::abs(predict_without(i) - measured_s[i]) / measured_s[i];
    }
    e.loo_mape = loo / static_cast<double>(n);
  }
  return e;
}

std::vector<std::size_t> all_but(std::size_t n, std::size_t left_out) {
  std::vector<std::size_t> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (i != left_out) out.push_back(i);
  }
  return out;
}

}  // namespace clustersim::calibrate
