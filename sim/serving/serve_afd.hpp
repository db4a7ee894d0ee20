#pragma once
// Attention/FFN disaggregation with ping-pong micro-batches (MegaScale-Infer, arXiv 2504.02263).
// One decode iteration of L layers: the batch is split into m micro-batches; each layer of each
// micro-batch runs attention (T_a) on the attention instance, an M2N dispatch (T_c), the experts
// (T_e) on the expert instances and a combine (T_c) back.
//   closed form:  T_total = (T_a + T_e + 2 T_c) + T_f (m L - 1),  T_f = max(T_a, T_e)
//   event level:  the same iteration simulated task by task on three FIFO resources (attention,
//                 experts, and the link in each direction); it equals the closed form when
//                 m >= 2 (1 + T_c / T_f) and shows the bubbles when m is smaller.
#include <cstdint>

namespace clustersim::sim {

struct AfdStageTimes {
  double attention_s = 0;  // T_a: one layer of one micro-batch on the attention side
  double expert_s = 0;     // T_e: one layer of one micro-batch on the expert side
  double comm_s = 0;       // T_c: one direction of the M2N transfer
};

// The smallest m >= 2 (1 + T_c / T_f) (at least 2).
std::int64_t afd_min_micro_batches(const AfdStageTimes& t);
double afd_closed_form_s(const AfdStageTimes& t, std::int64_t micro_batches, std::int64_t layers);
double afd_event_level_s(const AfdStageTimes& t, std::int64_t micro_batches, std::int64_t layers);

}  // namespace clustersim::sim
