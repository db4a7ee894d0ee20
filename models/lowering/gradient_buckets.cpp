#include "models/lowering/gradient_buckets.hpp"

#include <algorithm>
#include <cmath>

namespace clustersim {

namespace {

void sort_by_at(std::vector<Bucket>& buckets) {
  std::stable_sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.at < b.at; });
}

}  // namespace

double default_bucket_parameters(std::int64_t dp_times_cp) {
  return std::max(4e7, 1e6 * static_cast<double>(dp_times_cp));
}

std::vector<Bucket> split_into_buckets(BucketUse use, double parameters, double bytes, double bucket_parameters,
                                       const std::function<double(double)>& price_s) {
  std::vector<Bucket> out;
  if (parameters <= 0) return out;
  const bool one = bucket_parameters <= 0 || bucket_parameters >= parameters;
  const double size = one ? parameters : bucket_parameters;
  const double full = std::floor(parameters / size);
  const double rest = parameters - full * size;
  const double full_s = price_s(bytes * size / parameters);
  double done = 0;
  auto add = [&](double n, double seconds) {
    out.push_back({seconds, use == BucketUse::kReduction ? (done + n) / parameters : done / parameters});
    done += n;
  };
  for (double i = 0; i < full; ++i) add(size, full_s);
  if (rest > 0) add(rest, price_s(bytes * rest / parameters));
  return out;
}

double reduction_overrun_s(std::vector<Bucket> buckets, double backward_s) {
  sort_by_at(buckets);
  double end = 0;
  for (const Bucket& b : buckets) end = std::max(end, b.at * backward_s) + b.seconds;
  return std::max(0.0, end - backward_s);
}

double gather_delay_s(std::vector<Bucket> buckets, double forward_s) {
  sort_by_at(buckets);
  double gathered = 0, delay = 0;
  for (const Bucket& b : buckets) {
    gathered += b.seconds;
    delay = std::max(delay, gathered - b.at * forward_s);
  }
  return delay;
}

}  // namespace clustersim
