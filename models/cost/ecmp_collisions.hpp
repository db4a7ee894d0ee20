#pragma once
// ECMP hash collisions as balls in bins: flows leaving a leaf hash uniformly onto its uplinks,
// and the busiest uplink sets the slowest flow's rate. Closed forms for the estimate; the
// replay hashes real flows (sim/platform/ecmp_load.hpp). docs/estimate.md, "ECMP".
#include <span>

namespace clustersim {

// P(no bin holds more than `limit` balls) when `balls` balls land uniformly and independently
// in `bins` bins. Exact (a recursion over bins with binomial counts).
double max_bin_load_cdf(int balls, int bins, int limit);

// E[max(1, load_to_factor * M)], M the largest bin load over independent groups of `bins` bins,
// group g receiving balls[g] balls: the expected slowdown of the slowest flow when a flow on a
// bin of load L runs at 1 / max(1, load_to_factor * L) of its uncontended rate.
double expected_max_load_factor(std::span<const int> balls, int bins, double load_to_factor);

}  // namespace clustersim
