// ServeSimulator::run_on_fabric: serve --network flows. The engine's event loop runs inside a
// LiveNetwork of the deployment's GPUs (and the background training job's) in a forked child,
// since SimGrid allows one engine per process; the outcome comes back through the pipe.
#include <algorithm>
#include <vector>

#include "sim/platform/child_process.hpp"
#include "sim/platform/live_network.hpp"
#include "sim/serving/serve_engine.hpp"
#include "sim/serving/serve_outcome_codec.hpp"

namespace clustersim::sim {

ServeOutcome ServeSimulator::run_on_fabric(const RequestSet& requests, const TraceWindow* window,
                                           traces::ChromeTraceWriter* trace, std::uint64_t seed) const {
  const std::string bytes = run_in_child_process([&] {
    const std::int64_t gpus = deployment_.gpu_extent(gpus_per_node_);
    LiveNetwork network(cluster_, gpus);
    if (const auto& b = deployment_.background_training) {
      // One ring per local rank over the job's nodes, as NCCL runs one per rail.
      std::vector<std::int64_t> ring(static_cast<std::size_t>(b->nodes));
      for (std::int64_t g = 0; g < gpus_per_node_; ++g) {
        for (std::int64_t n = 0; n < b->nodes; ++n) ring[static_cast<std::size_t>(n)] = (b->first_node + n) * gpus_per_node_ + g;
        network.add_periodic_ring(RingCollective::kAllReduce, ring, b->all_reduce_bytes, b->start_s, b->period_s);
      }
    }
    traces::ChromeTraceWriter child_trace;
    ServeOutcome out;
    network.run([&] {
      ServeFlows flows(network);
      out = run_engine(requests, window, trace ? &child_trace : nullptr, seed, &flows);
    });
    out.flows = network.flows_started();
    out.fabric_gpus = gpus;
    // The background job's all-reduces: rounds every rail's ring completed, mean round time.
    std::int64_t rounds = 0;
    double sum = 0;
    for (const PeriodicJobStats& s : network.periodic_stats()) {
      rounds += s.rounds;
      sum += s.round_s_sum;
    }
    out.background_rounds = network.periodic_stats().empty()
                                ? 0
                                : rounds / static_cast<std::int64_t>(network.periodic_stats().size());
    out.background_round_s_mean = rounds > 0 ? sum / static_cast<double>(rounds) : 0;
    return encode_outcome(out, trace ? &child_trace : nullptr);
  });
  return decode_outcome(bytes, trace);
}

}  // namespace clustersim::sim
