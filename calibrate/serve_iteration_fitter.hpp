#pragma once
// Fits a serving engine's whole-iteration latency (serve_iteration records) for one model,
// tensor-parallel degree and phase, in DistServe's forms:
//   prefill  t = a + b * sum(prompt) + c * sum(prompt^2)
//   decode   t = a + b * sum(context) + d * batch
// piecewise in the batch size: one segment, or two split at a batch size, whichever the
// Bayesian information criterion prefers (DistServe fits decode separately below and above a
// batch of 95, where its kernels change). Least absolute relative error, coefficients >= 0.
#include <vector>

#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

struct ServeIterationPoint {
  std::int64_t batch = 1;
  double tokens = 0, tokens_squared = 0;
  double time_s = 0;
};

struct ServeIterationFitResult {
  std::vector<ServeIterationSegment> segments;
  FitError error;
};

// Needs at least 4 points; returns no segments otherwise.
ServeIterationFitResult fit_serve_iteration(const std::vector<ServeIterationPoint>& points, ServePhase phase);

}  // namespace clustersim::calibrate
