#pragma once
// Data-parallel gradient reduction and parameter gather split into Megatron-LM's buckets, and
// the time they leave exposed behind the compute they overlap (docs/estimate.md, "Step tail").
#include <cstdint>
#include <functional>
#include <vector>

namespace clustersim {

// Megatron-LM's default bucket (parameters) when gradient reduction overlaps the backward:
// max(40,000,000, 1,000,000 x data-parallel size including context parallelism).
double default_bucket_parameters(std::int64_t dp_times_cp);

struct Bucket {
  double seconds = 0;
  double at = 0;  // fraction of the overlapped compute: reduction ready / gather needed
};

// One collective over `parameters` split into buckets of at most `bucket_parameters` (0 or at
// least `parameters`: one bucket); `price_s(bytes)` prices a bucket of the collective whose
// whole size is `bytes`. Gradients are ready after the backward has passed their parameters;
// parameters are needed when the forward reaches them.
enum class BucketUse { kReduction, kGather };
std::vector<Bucket> split_into_buckets(BucketUse use, double parameters, double bytes, double bucket_parameters,
                                       const std::function<double(double)>& price_s);

// Buckets (of one or several collectives) reduced one at a time, each once the backward of
// `backward_s` has made it ready: seconds the last reduction ends after the backward.
double reduction_overrun_s(std::vector<Bucket> buckets, double backward_s);

// Buckets gathered one at a time, all issued before a forward of `forward_s` that needs each
// when it reaches its parameters: seconds the forward is delayed.
double gather_delay_s(std::vector<Bucket> buckets, double forward_s);

}  // namespace clustersim
