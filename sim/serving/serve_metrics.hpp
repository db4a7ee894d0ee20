#pragma once
// Serving metrics from a simulation: latency percentiles, SLO attainment, throughput, and
// goodput — the highest request rate at which a given share of requests meets both the TTFT
// and the TPOT target, found by bisection with a full simulation per step.
#include <cstdint>
#include <functional>

#include "sim/serving/serve_engine.hpp"

namespace clustersim::sim {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

// How the share is counted. kJoint (the default): the share of requests that meet both
// targets. kSeparate (DistServe's simulator, simdistserve/benchmarks/simulate_dist.py): the
// share meeting the TTFT target and the share meeting the TPOT target must each reach it,
// i.e. the P90 TTFT and the P90 TPOT are each within target; never stricter than kJoint.
enum class SloRule { kJoint, kSeparate };

struct ServeSlo {
  double ttft_s = 0;      // 0: no target
  double tpot_s = 0;
  double share = 0.9;     // of requests that must meet the targets
  SloRule rule = SloRule::kJoint;
};

struct ServeSummary {
  std::int64_t requests = 0, finished = 0, dropped = 0;
  Percentiles ttft, tpot, e2e;
  double attainment = 0;  // share of all requests meeting both targets
  double ttft_attainment = 0, tpot_attainment = 0;  // share meeting each target
  // Attainment under the SLO's rule: `attainment` (joint), or the smaller of the two (separate).
  double rule_attainment = 0;
  double duration_s = 0;  // first arrival to last completion
  double request_rate_per_s = 0;  // offered: requests / arrival span
  double input_tokens_per_s = 0, output_tokens_per_s = 0;
  double output_tokens_per_s_per_gpu = 0, tokens_per_s_per_gpu = 0;
};

// Nearest-rank percentile of unsorted values (copied).
Percentiles percentiles(std::vector<double> values);
ServeSummary summarise(const ServeOutcome& outcome, const ServeSlo& slo);

struct GoodputStep {
  double rate_per_s = 0;
  double attainment = 0;
};
struct GoodputResult {
  double rate_per_s = 0;  // highest rate found that meets the SLO (0: none): the bracket's lower end
  double failing_rate_per_s = 0;  // lowest rate found that misses it: the bracket's upper end (0: none found)
  std::vector<GoodputStep> steps;
};
// `simulate(rate)` runs a full simulation at that rate. Doubles `hi` until the SLO fails (at
// most 16 times), then bisects until hi - lo <= tolerance * hi.
GoodputResult find_goodput(const std::function<ServeOutcome(double)>& simulate, const ServeSlo& slo,
                           double start_rate, double tolerance = 0.01);

}  // namespace clustersim::sim
