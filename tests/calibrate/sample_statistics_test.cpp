#include <gtest/gtest.h>

#include <stdexcept>

#include "calibrate/sample_statistics.hpp"

namespace clustersim::calibrate {
namespace {

TEST(SampleStatistics, MedianAndPercentilesInterpolate) {
  SampleStatistics s = summarize_samples({4.0, 1.0, 3.0, 2.0});
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.median_s, 2.5);
  EXPECT_DOUBLE_EQ(s.p10_s, 1.3);
  EXPECT_DOUBLE_EQ(s.p90_s, 3.7);
  EXPECT_DOUBLE_EQ(s.mean_s, 2.5);
  EXPECT_NEAR(s.stddev_s, 1.2909944487358056, 1e-15);
  EXPECT_DOUBLE_EQ(summarize_samples({5.0, 1.0, 3.0}).median_s, 3.0);
}

TEST(SampleStatistics, RejectsEmptyAndInvalidSamples) {
  EXPECT_THROW(summarize_samples({}), std::invalid_argument);
  EXPECT_THROW(summarize_samples({1.0, -1.0}), std::invalid_argument);
}

}  // namespace
}  // namespace clustersim::calibrate
