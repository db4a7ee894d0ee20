#include "calibrate/sample_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace clustersim::calibrate {

namespace {

double percentile_of_sorted(const std::vector<double>& sorted, double q) {
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

}  // namespace

SampleStatistics summarize_samples(std::vector<double> samples_s) {
  if (samples_s.empty()) throw std::invalid_argument("no samples to summarize");
  for (double s : samples_s) {
    if (!std::isfinite(s) || s < 0) throw std::invalid_argument("samples must be finite and >= 0");
  }
  std::sort(samples_s.begin(), samples_s.end());
  SampleStatistics st;
  st.count = static_cast<std::int64_t>(samples_s.size());
  st.min_s = samples_s.front();
  st.max_s = samples_s.back();
  st.mean_s = std::accumulate(samples_s.begin(), samples_s.end(), 0.0) / static_cast<double>(st.count);
  st.median_s = percentile_of_sorted(samples_s, 0.5);
  st.p10_s = percentile_of_sorted(samples_s, 0.1);
  st.p90_s = percentile_of_sorted(samples_s, 0.9);
  if (st.count > 1) {
    double sum_sq = 0;
    for (double s : samples_s) sum_sq += (s - st.mean_s) * (s - st.mean_s);
    st.stddev_s = std::sqrt(sum_sq / static_cast<double>(st.count - 1));
  }
  return st;
}

}  // namespace clustersim::calibrate
