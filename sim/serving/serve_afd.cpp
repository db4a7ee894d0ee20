#include "sim/serving/serve_afd.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace clustersim::sim {

std::int64_t afd_min_micro_batches(const AfdStageTimes& t) {
  const double tf = std::max(t.attention_s, t.expert_s);
  if (tf <= 0) return 2;
  return std::max<std::int64_t>(2, static_cast<std::int64_t>(std::ceil(2.0 * (1.0 + t.comm_s / tf) - 1e-12)));
}

double afd_closed_form_s(const AfdStageTimes& t, std::int64_t m, std::int64_t layers) {
  const double tf = std::max(t.attention_s, t.expert_s);
  return t.attention_s + t.expert_s + 2 * t.comm_s + tf * (static_cast<double>(m * layers) - 1);
}

double afd_event_level_s(const AfdStageTimes& t, std::int64_t m, std::int64_t layers) {
  // Each resource serves its tasks in (layer, micro-batch) order, the order the ping-pong
  // schedule issues them; a task starts when its resource is free and its input has arrived.
  // The two link directions are pipelined (a transfer occupies its direction for T_c).
  std::vector<double> ready(static_cast<std::size_t>(m), 0.0);  // when micro-batch i may run attention
  double attention_free = 0, expert_free = 0, to_expert_free = 0, to_attention_free = 0;
  double end = 0;
  for (std::int64_t l = 0; l < layers; ++l) {
    for (std::int64_t i = 0; i < m; ++i) {
      auto& r = ready[static_cast<std::size_t>(i)];
      const double a_end = std::max(attention_free, r) + t.attention_s;
      attention_free = a_end;
      const double d_end = std::max(to_expert_free, a_end) + t.comm_s;
      to_expert_free = d_end;
      const double e_end = std::max(expert_free, d_end) + t.expert_s;
      expert_free = e_end;
      const double c_end = std::max(to_attention_free, e_end) + t.comm_s;
      to_attention_free = c_end;
      r = c_end;
      end = std::max(end, c_end);
    }
  }
  return end;
}

}  // namespace clustersim::sim
