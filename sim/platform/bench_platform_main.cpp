// Benchmark of the rail fat-tree platform and the communication primitives (not part of the CLI).
//   bench_platform CLUSTER.json GPUS build
//   bench_platform CLUSTER.json GPUS rings COUNT GROUP   COUNT concurrent GROUP-rank all-reduces
//   bench_platform CLUSTER.json GPUS skeleton MICROBATCHES DP_RAILS  TP8 x PP16 x DP(GPUS/128) 1F1B
// Prints one line of key=value pairs: build_s, simulate_s, simulated_s, activities, flows,
// peak_rss_mb. One engine per process, so scripts/bench_platform.sh runs it once per sample.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "sim/platform/network_simulation.hpp"

namespace {

using clustersim::sim::ActivityId;
using clustersim::sim::LaneId;
using clustersim::sim::NetworkSimulation;
using clustersim::sim::RingCollective;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// COUNT rings of GROUP ranks; ring k lies on rail k % rails over GROUP consecutive nodes
// (wrapping), the layout of DP groups with TP = GPUs per node. 1 GiB per rank.
void add_rings(NetworkSimulation& sim, std::int64_t count, std::int64_t group) {
  const auto& f = sim.fabric();
  const std::int64_t gpn = f.gpus_per_node(), rails = f.rail_count();
  for (std::int64_t k = 0; k < count; ++k) {
    std::vector<std::int64_t> ranks;
    const std::int64_t first_node = (k / rails) * group;
    for (std::int64_t i = 0; i < group; ++i) {
      ranks.push_back(((first_node + i) % f.node_count()) * gpn + k % rails);
    }
    const LaneId lane = sim.add_lane(ranks.front());
    sim.add_ring_collective(lane, RingCollective::kAllReduce, ranks, 1024.0 * 1024 * 1024);
  }
}

// TP8 x PP16 x DP(nodes/16), Megatron rank order (TP fastest: a node is one TP group; node =
// dp + DP * stage). One compute lane and one send lane per node, simulating rail 0 for the
// pipeline (all rails carry the same traffic); 1F1B with forward 10 ms and backward 20 ms per
// micro-batch, 64 MiB activations each way; then the DP all-reduce of 1.1 GB per GPU on the
// first DP_RAILS rails of every stage (8 = every GPU; 1 = rail 0 as the representative of
// identical rails).
void add_skeleton(NetworkSimulation& sim, std::int64_t microbatches, std::int64_t dp_rails) {
  const auto& f = sim.fabric();
  constexpr std::int64_t pp = 16;
  const std::int64_t gpn = f.gpus_per_node(), dp = f.node_count() / pp;
  const double act_bytes = 64.0 * 1024 * 1024, grad_bytes = 1.1e9;
  const std::int64_t m_count = microbatches;
  auto node_of = [dp](std::int64_t stage, std::int64_t d) { return d + dp * stage; };
  // Ids per (stage, d, microbatch) of the forward send and backward send.
  std::vector<ActivityId> fwd_send(static_cast<std::size_t>(pp * dp * m_count), -1);
  std::vector<ActivityId> bwd_send(fwd_send.size(), -1);
  std::vector<ActivityId> fwd(fwd_send.size(), -1), bwd(fwd_send.size(), -1);
  auto at = [&](std::int64_t s, std::int64_t d, std::int64_t m) {
    return static_cast<std::size_t>((s * dp + d) * m_count + m);
  };
  std::vector<ActivityId> last_backward(static_cast<std::size_t>(pp * dp), -1);
  for (std::int64_t s = 0; s < pp; ++s) {
    const std::int64_t warmup = std::min(pp - s - 1, m_count);
    for (std::int64_t d = 0; d < dp; ++d) {
      const std::int64_t gpu = node_of(s, d) * gpn;
      const LaneId compute = sim.add_lane(gpu), sends = sim.add_lane(gpu);
      auto forward = [&](std::int64_t m) {
        const ActivityId c = sim.add_compute(compute, gpu, 10e-3);
        fwd[at(s, d, m)] = c;
        if (s + 1 < pp) fwd_send[at(s, d, m)] = sim.add_transfer(sends, gpu, node_of(s + 1, d) * gpn, act_bytes, {{c}});
      };
      auto backward = [&](std::int64_t m) {
        const ActivityId c = sim.add_compute(compute, gpu, 20e-3);
        bwd[at(s, d, m)] = c;
        last_backward[static_cast<std::size_t>(s * dp + d)] = c;
        if (s > 0) bwd_send[at(s, d, m)] = sim.add_transfer(sends, gpu, node_of(s - 1, d) * gpn, act_bytes, {{c}});
      };
      for (std::int64_t m = 0; m < warmup; ++m) forward(m);
      for (std::int64_t i = 0; i < m_count - warmup; ++i) {
        forward(warmup + i);
        backward(i);
      }
      for (std::int64_t m = m_count - warmup; m < m_count; ++m) backward(m);
    }
  }
  // Pipeline dependencies, wired once every activity exists.
  for (std::int64_t s = 0; s < pp; ++s) {
    for (std::int64_t d = 0; d < dp; ++d) {
      for (std::int64_t m = 0; m < m_count; ++m) {
        if (s > 0) sim.add_dependency(fwd_send[at(s - 1, d, m)], fwd[at(s, d, m)]);
        if (s + 1 < pp) sim.add_dependency(bwd_send[at(s + 1, d, m)], bwd[at(s, d, m)]);
      }
    }
  }
  for (std::int64_t s = 0; s < pp; ++s) {
    std::vector<ActivityId> deps;
    for (std::int64_t d = 0; d < dp; ++d) deps.push_back(last_backward[static_cast<std::size_t>(s * dp + d)]);
    for (std::int64_t rail = 0; rail < dp_rails; ++rail) {
      std::vector<std::int64_t> ring;
      for (std::int64_t d = 0; d < dp; ++d) ring.push_back(node_of(s, d) * gpn + rail);
      sim.add_ring_collective(sim.add_lane(ring.front()), RingCollective::kAllReduce, ring, grad_bytes, deps);
    }
  }
}

int run(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_platform CLUSTER.json GPUS build|rings COUNT GROUP|skeleton MICROBATCHES DP_RAILS\n");
    return 2;
  }
  clustersim::Diagnostics diag;
  const clustersim::ClusterSpec cluster = clustersim::load_cluster_spec(argv[1], argv[1], diag);
  diag.throw_if_errors();
  const std::int64_t gpus = std::atoll(argv[2]);
  const std::string scenario = argv[3];

  const auto t0 = Clock::now();
  NetworkSimulation sim(cluster, gpus);
  const double build_s = seconds_since(t0);
  const auto t1 = Clock::now();
  if (scenario == "rings" && argc >= 6) {
    add_rings(sim, std::atoll(argv[4]), std::atoll(argv[5]));
  } else if (scenario == "skeleton" && argc >= 6) {
    add_skeleton(sim, std::atoll(argv[4]), std::atoll(argv[5]));
  } else if (scenario != "build") {
    std::fprintf(stderr, "bench_platform: unknown scenario or missing arguments\n");
    return 2;
  }
  if (sim.activity_count() > 0) sim.run();
  const double simulate_s = seconds_since(t1);
  std::printf("gpus=%lld links=%lld scenario=%s build_s=%.3f simulate_s=%.3f simulated_s=%.6f activities=%lld "
              "flows=%lld peak_rss_mb=%.0f\n",
              static_cast<long long>(gpus), static_cast<long long>(sim.fabric().link_count()), scenario.c_str(),
              build_s, simulate_s, sim.now_s(), static_cast<long long>(sim.activity_count()),
              static_cast<long long>(sim.flows_simulated()), peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_platform: %s\n", e.what());
    return 1;
  }
}
