#pragma once
// serve --network flows: the inter-instance traffic of a serving deployment (KV hand-offs,
// draft/target exchanges, attention<->FFN M2N) as flows on the cluster's rail fat-tree, driven
// live by the serving engine's event loop (docs/serve.md, "Network"). Instances sit on the GPUs
// the deployment places them on; a transfer between two instances is split over their rank
// pairs as the closed form splits it, and its bytes are scaled so that alone on the fabric it
// takes exactly what the closed form charges (the measured send/recv efficiency), so only the
// sharing of links with other transfers and with background traffic makes it slower.
#include <cstdint>
#include <vector>

#include "sim/platform/live_network.hpp"

namespace clustersim::sim {

enum class ServeNetworkMode { kClosedForm, kFlows };

// Consecutive GPUs of one instance (TP x PP ranks).
struct InstancePlace {
  std::int64_t first_gpu = 0, gpus = 1;
};

class ServeFlows {
 public:
  explicit ServeFlows(LiveNetwork& network) : net_(network) {}

  // Starts a transfer of `bytes` in total from instance `src` to `dst` at `at_s`. With S and D
  // ranks, max(S, D) flows pair rank k*S/n with rank k*D/n, each carrying bytes/n, so every
  // rank of the smaller side moves bytes/min(S, D), as the closed form prices it (closed_form_s,
  // for bytes/min(S, D) alone). Returns the transfer's id.
  TransferId start(const InstancePlace& src, const InstancePlace& dst, double bytes, double closed_form_s, double at_s);
  TransferId advance(double until_s) { return net_.advance(until_s); }
  bool busy() const { return net_.busy(); }
  double now_s() const { return net_.now_s(); }

 private:
  LiveNetwork& net_;
  std::vector<Flow> flows_;  // scratch, reused per transfer
};

}  // namespace clustersim::sim
