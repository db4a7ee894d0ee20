#pragma once
// Summary statistics of timing samples, as calibration records report them.
#include <cstdint>
#include <vector>

namespace clustersim::calibrate {

struct SampleStatistics {
  std::int64_t count = 0;
  double min_s = 0, max_s = 0, mean_s = 0;
  double median_s = 0;  // the statistic profiles fit against
  double p10_s = 0, p90_s = 0;
  double stddev_s = 0;  // sample standard deviation (n - 1)
};

// Percentiles use linear interpolation between order statistics (numpy's default).
// Throws std::invalid_argument on an empty sample or a non-finite / negative value.
SampleStatistics summarize_samples(std::vector<double> samples_s);

}  // namespace clustersim::calibrate
