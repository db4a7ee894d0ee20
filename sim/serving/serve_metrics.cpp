#include "sim/serving/serve_metrics.hpp"

#include <algorithm>
#include <cmath>

namespace clustersim::sim {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

ServeSummary summarise(const ServeOutcome& o, const ServeSlo& slo) {
  ServeSummary s;
  s.requests = static_cast<std::int64_t>(o.requests.size());
  std::vector<double> ttft, tpot, e2e;
  ttft.reserve(o.requests.size());
  tpot.reserve(o.requests.size());
  e2e.reserve(o.requests.size());
  double first = o.requests.empty() ? 0 : o.requests.front().arrival_s, last_arrival = first, last_done = 0;
  double in_tokens = 0, out_tokens = 0;
  std::int64_t met = 0, met_ttft = 0, met_tpot = 0;
  for (const auto& r : o.requests) {
    last_arrival = std::max(last_arrival, r.arrival_s);
    if (!r.finished) {
      s.dropped++;
      continue;
    }
    s.finished++;
    ttft.push_back(r.ttft_s);
    tpot.push_back(r.tpot_s);
    e2e.push_back(r.e2e_s);
    last_done = std::max(last_done, r.arrival_s + r.e2e_s);
    in_tokens += r.input_tokens;
    out_tokens += r.output_tokens;
    const bool ttft_ok = slo.ttft_s <= 0 || r.ttft_s <= slo.ttft_s;
    const bool tpot_ok = slo.tpot_s <= 0 || r.tpot_s <= slo.tpot_s;
    met += ttft_ok && tpot_ok;
    met_ttft += ttft_ok;
    met_tpot += tpot_ok;
  }
  s.ttft = percentiles(std::move(ttft));
  s.tpot = percentiles(std::move(tpot));
  s.e2e = percentiles(std::move(e2e));
  auto share = [&](std::int64_t n) { return s.requests > 0 ? static_cast<double>(n) / static_cast<double>(s.requests) : 0; };
  s.attainment = share(met);
  s.ttft_attainment = share(met_ttft);
  s.tpot_attainment = share(met_tpot);
  s.rule_attainment = slo.rule == SloRule::kJoint ? s.attainment : std::min(s.ttft_attainment, s.tpot_attainment);
  s.duration_s = std::max(1e-12, last_done - first);
  s.request_rate_per_s = last_arrival > first ? static_cast<double>(s.requests - 1) / (last_arrival - first) : 0;
  s.input_tokens_per_s = in_tokens / s.duration_s;
  s.output_tokens_per_s = out_tokens / s.duration_s;
  const double gpus = static_cast<double>(std::max<std::int64_t>(1, o.gpus));
  s.output_tokens_per_s_per_gpu = s.output_tokens_per_s / gpus;
  s.tokens_per_s_per_gpu = (in_tokens + out_tokens) / s.duration_s / gpus;
  return s;
}

GoodputResult find_goodput(const std::function<ServeOutcome(double)>& simulate, const ServeSlo& slo,
                           double start_rate, double tolerance) {
  GoodputResult g;
  auto ok = [&](double rate) {
    const ServeSummary s = summarise(simulate(rate), slo);
    g.steps.push_back({rate, s.rule_attainment});
    return s.rule_attainment >= slo.share;
  };
  double lo = 0, hi = start_rate;
  bool failed = false;
  for (int i = 0; i < 16; ++i) {
    if (!ok(hi)) {
      failed = true;
      break;
    }
    lo = hi;
    hi *= 2;
  }
  if (!failed) {  // every doubling met the SLO: no upper end found
    g.rate_per_s = lo;
    return g;
  }
  while (hi - lo > tolerance * hi) {
    const double mid = 0.5 * (lo + hi);
    (ok(mid) ? lo : hi) = mid;
  }
  g.rate_per_s = lo;
  g.failing_rate_per_s = hi;
  return g;
}

}  // namespace clustersim::sim
