// The rail fat-tree platform and the communication primitives against closed forms and max-min
// predictions. SimGrid allows one engine per process, so every simulation runs in a forked child
// (run_in_child) and hands its numbers back through a pipe; the parent never starts SimGrid.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "models/cost/ecmp_collisions.hpp"
#include "sim/platform/collective_flows.hpp"
#include "sim/platform/network_simulation.hpp"
#include "sim/platform/rail_fabric.hpp"

namespace clustersim::sim {
namespace {

constexpr double kNicBw = 50e9, kNvlBw = 450e9;
constexpr double kNvlLat = 0.5e-6, kNicLat = 0.6e-6, kSwitchLat = 0.4e-6;
constexpr double kSameLeafLat = 2 * kNicLat + kSwitchLat;
constexpr double kCrossLeafLat = 2 * kNicLat + 3 * kSwitchLat;

ClusterSpec h100_like(std::int64_t nodes_per_leaf, double leaf_os = 1.0, double spine_os = 1.0) {
  ClusterSpec c;
  c.name = "test";
  c.gpu.hbm_bandwidth_bytes_per_s = 3.35e12;
  c.node = {8, kNvlBw, kNvlLat, 8, kNicBw, kNicLat};
  c.fabric = {"rail_optimized_fat_tree", nodes_per_leaf, leaf_os, spine_os, kSwitchLat};
  return c;
}

// Runs body in a forked child and returns what it returned; {} and a test failure if the child
// failed. A child never runs gtest assertions: it only computes.
std::vector<double> run_in_child(const std::function<std::vector<double>()>& body) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int code = 0;
    try {
      const std::vector<double> out = body();
      const std::size_t n = out.size();
      if (write(fds[1], &n, sizeof n) != static_cast<ssize_t>(sizeof n)) code = 4;
      const auto bytes = static_cast<ssize_t>(n * sizeof(double));
      if (n > 0 && write(fds[1], out.data(), static_cast<std::size_t>(bytes)) != bytes) code = 4;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 3;
    }
    close(fds[1]);
    std::fflush(nullptr);
    _exit(code);
  }
  close(fds[1]);
  std::vector<double> out;
  std::size_t n = 0;
  if (read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) {
    out.resize(n);
    auto* p = reinterpret_cast<char*>(out.data());
    std::size_t left = n * sizeof(double);
    while (left > 0) {
      const ssize_t got = read(fds[0], p, left);
      if (got <= 0) break;
      p += got;
      left -= static_cast<std::size_t>(got);
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << "child simulation failed (status " << status << ")";
    return {};
  }
  return out;
}

double duration(const NetworkSimulation& sim, ActivityId a) {
  return sim.timing(a).end_s - sim.timing(a).start_s;
}

std::vector<std::int64_t> rail0_ranks(std::int64_t nodes) {
  std::vector<std::int64_t> g;
  for (std::int64_t n = 0; n < nodes; ++n) g.push_back(8 * n);
  return g;
}

// --- RailFabric: routes as link lists (no SimGrid) -------------------------------------------

TEST(RailFabric, RoutesFollowRailsLeavesAndSpine) {
  const RailFabric f(h100_like(4), 128);  // 16 nodes, 4 leaf groups per rail
  EXPECT_EQ(f.node_count(), 16);
  EXPECT_EQ(f.leaf_group_count(), 4);
  EXPECT_FALSE(f.has_spine_links());

  // Same rail, same leaf: NIC -> leaf -> NIC.
  FabricRoute r = f.route(0, 8);
  ASSERT_EQ(r.size, 2);
  EXPECT_EQ(f.link_name(r.links[0]), "nic_up.n0.r0");
  EXPECT_EQ(f.link_name(r.links[1]), "nic_down.n1.r0");
  EXPECT_NEAR(r.latency_s, kSameLeafLat, 1e-18);

  // Same rail, other leaf: up to the spine tier and down.
  r = f.route(3, 8 * 5 + 3);
  ASSERT_EQ(r.size, 4);
  EXPECT_EQ(f.link_name(r.links[0]), "nic_up.n0.r3");
  EXPECT_EQ(f.link_name(r.links[1]), "leaf_up.r3.l0");
  EXPECT_EQ(f.link_name(r.links[2]), "leaf_down.r3.l1");
  EXPECT_EQ(f.link_name(r.links[3]), "nic_down.n5.r3");
  EXPECT_NEAR(r.latency_s, kCrossLeafLat, 1e-18);

  // Inside a node: NVLink up and down.
  r = f.route(1, 6);
  ASSERT_EQ(r.size, 2);
  EXPECT_EQ(f.link_name(r.links[0]), "nvlink_up.g1");
  EXPECT_EQ(f.link_name(r.links[1]), "nvlink_down.g6");
  EXPECT_NEAR(r.latency_s, kNvlLat, 1e-18);

  // Across rails: NVLink to the local GPU on the destination's rail first (PXN).
  r = f.route(1, 8 + 6);
  ASSERT_EQ(r.size, 4);
  EXPECT_EQ(f.link_name(r.links[0]), "nvlink_up.g1");
  EXPECT_EQ(f.link_name(r.links[1]), "nvlink_down.g6");
  EXPECT_EQ(f.link_name(r.links[2]), "nic_up.n0.r6");
  EXPECT_EQ(f.link_name(r.links[3]), "nic_down.n1.r6");

  // Self: the loopback.
  r = f.route(5, 5);
  ASSERT_EQ(r.size, 1);
  EXPECT_EQ(f.link_name(r.links[0]), "loopback");

  // Every link name maps back to its id.
  for (std::int32_t id = 0; id < f.link_count(); ++id) ASSERT_EQ(f.find_link(f.link_name(id)), id);
  EXPECT_EQ(f.find_link("nic_up.n99.r0"), -1);
}

TEST(RailFabric, SpineLinkOnlyWhenOversubscribed) {
  const RailFabric f(h100_like(4, 1.0, 2.0), 128);
  ASSERT_TRUE(f.has_spine_links());
  const FabricRoute r = f.route(0, 8 * 4);
  ASSERT_EQ(r.size, 5);
  EXPECT_EQ(f.link_name(r.links[2]), "spine.r0");
  // Spine tier of a rail: all its leaves' uplinks (4 x 4 x 50 GB/s) over the ratio 2.
  EXPECT_DOUBLE_EQ(f.link(r.links[2]).bandwidth_bytes_per_s, 4 * 4 * kNicBw / 2);
  EXPECT_DOUBLE_EQ(f.link(r.links[1]).bandwidth_bytes_per_s, 4 * kNicBw);
}

TEST(RailFabric, PartialClusters) {
  // 100 GPUs: 12 full nodes and one of 4; 13 nodes in leaf groups of 4 (the last holds one).
  const RailFabric f(h100_like(4), 100);
  EXPECT_EQ(f.node_count(), 13);
  EXPECT_EQ(f.gpus_in_node(12), 4);
  EXPECT_EQ(f.leaf_group_count(), 4);
  // GPU 99 (node 12, rail 3) to GPU 6 (node 0, rail 6): node 12 has no GPU on rail 6, so the
  // flow crosses rails at the spine tier instead of over NVLink.
  const FabricRoute r = f.route(99, 6);
  ASSERT_EQ(r.size, 4);
  EXPECT_EQ(f.link_name(r.links[0]), "nic_up.n12.r3");
  EXPECT_EQ(f.link_name(r.links[1]), "leaf_up.r3.l3");
  EXPECT_EQ(f.link_name(r.links[2]), "leaf_down.r6.l0");
  EXPECT_EQ(f.link_name(r.links[3]), "nic_down.n0.r6");
  EXPECT_THROW(f.route(0, 100), std::out_of_range);
}

TEST(CollectiveFlows, RingAndAllToAllBytes) {
  EXPECT_DOUBLE_EQ(ring_bytes_per_hop(RingCollective::kAllReduce, 8, 8e6), 2.0 * 7 / 8 * 8e6);
  EXPECT_DOUBLE_EQ(ring_bytes_per_hop(RingCollective::kAllGather, 8, 8e6), 7.0 / 8 * 8e6);
  EXPECT_EQ(ring_steps(RingCollective::kReduceScatter, 8), 7);

  // 3 nodes x 4 group ranks each: every rank sends (G-1)/G * S in total.
  const RailFabric f(h100_like(32), 24);
  std::vector<std::int64_t> group;
  for (std::int64_t n = 0; n < 3; ++n) {
    for (std::int64_t l = 0; l < 4; ++l) group.push_back(8 * n + 2 * l);
  }
  std::vector<PlanPhase> phases;
  std::vector<PlanFlow> flows;
  const double s = 12e6;
  append_all_to_all(f, group, s, phases, flows);
  ASSERT_EQ(phases.size(), 1u);
  EXPECT_EQ(flows.size(), 12u + 3u * 2u * 4u);  // intra successors + (node pairs) x dst ranks
  double total = 0;
  for (const PlanFlow& fl : flows) total += fl.bytes;
  EXPECT_NEAR(total, 12 * (11.0 / 12.0) * s, 1e-6);
  for (const PlanFlow& fl : flows) {  // network flows stay on the destination's rail
    if (f.node_of(fl.src) != f.node_of(fl.dst)) {
      EXPECT_EQ(f.rail_of(fl.src), f.rail_of(fl.dst));
    }
  }
}

// --- simulations ---------------------------------------------------------------------------

TEST(NetworkSimulation, RingAllReduceMatchesClosedFormInsideANode) {
  constexpr double s = 1 << 30;
  const std::vector<double> out = run_in_child([&] {
    NetworkSimulation sim(h100_like(32), 16);
    const LaneId lane = sim.add_lane();
    const std::vector<std::int64_t> node0{0, 1, 2, 3, 4, 5, 6, 7};
    const ActivityId ar = sim.add_ring_collective(lane, RingCollective::kAllReduce, node0, s);
    const ActivityId ag = sim.add_ring_collective(lane, RingCollective::kAllGather, node0, s, {{ar}});
    const ActivityId rs = sim.add_ring_collective(lane, RingCollective::kReduceScatter, node0, s, {{ag}});
    sim.run();
    return std::vector<double>{duration(sim, ar), duration(sim, ag), duration(sim, rs)};
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NEAR(out[0], ring_closed_form_s(RingCollective::kAllReduce, 8, s, kNvlLat, kNvlBw),
              1e-3 * out[0]);
  EXPECT_NEAR(out[1], ring_closed_form_s(RingCollective::kAllGather, 8, s, kNvlLat, kNvlBw), 1e-3 * out[1]);
  EXPECT_NEAR(out[2], ring_closed_form_s(RingCollective::kReduceScatter, 8, s, kNvlLat, kNvlBw),
              1e-3 * out[2]);
}

TEST(NetworkSimulation, RingAllReduceMatchesClosedFormAcrossNodesOnARail) {
  constexpr double s = 1 << 30;
  const std::vector<double> out = run_in_child([&] {
    NetworkSimulation sim(h100_like(4), 128);  // 16 nodes, 4 leaves per rail
    const LaneId lane = sim.add_lane();
    const ActivityId ar = sim.add_ring_collective(lane, RingCollective::kAllReduce, rail0_ranks(16), s);
    sim.run();
    return std::vector<double>{duration(sim, ar)};
  });
  ASSERT_EQ(out.size(), 1u);
  // Every step is gated by a cross-leaf hop.
  const double expected = ring_closed_form_s(RingCollective::kAllReduce, 16, s, kCrossLeafLat, kNicBw);
  EXPECT_NEAR(out[0], expected, 1e-3 * expected);
}

TEST(NetworkSimulation, PerStepAndAggregatedRingsAgreeUnderNicContention) {
  constexpr double s = 256.0 * (1 << 20);
  auto ring_with_contention = [&](RingEncoding encoding) {
    return run_in_child([&] {
      NetworkSimulation sim(h100_like(4), 64);  // 8 nodes
      const LaneId ring = sim.add_lane(), other = sim.add_lane();
      // A pipeline-like flow sharing node 0's rail-0 NIC and node 4's with ring hops.
      sim.add_transfer(other, 0, 8 * 4, 128.0 * (1 << 20));
      sim.add_background_flow({8 * 2, 8 * 6, 64.0 * (1 << 20)}, 1e-3);
      const ActivityId ar =
          sim.add_ring_collective(ring, RingCollective::kAllReduce, rail0_ranks(8), s, {}, encoding);
      sim.run();
      return std::vector<double>{duration(sim, ar)};
    });
  };
  const std::vector<double> aggregated = ring_with_contention(RingEncoding::kAggregated);
  const std::vector<double> per_step = ring_with_contention(RingEncoding::kPerStep);
  ASSERT_EQ(aggregated.size(), 1u);
  ASSERT_EQ(per_step.size(), 1u);
  const double isolated = ring_closed_form_s(RingCollective::kAllReduce, 8, s, kCrossLeafLat, kNicBw);
  EXPECT_GT(aggregated[0], 1.05 * isolated);  // the contention is real
  EXPECT_NEAR(aggregated[0], per_step[0], 5e-3 * per_step[0]);
  RecordProperty("aggregated_s", std::to_string(aggregated[0]));
  RecordProperty("per_step_s", std::to_string(per_step[0]));
}

// Same-rail transfers between disjoint pairs, one per lane, all at once: no link is shared.
std::vector<double> uncontended_transfers(PlatformKind kind) {
  return run_in_child([kind] {
    NetworkSimulation sim(h100_like(4), 128, kind);
    std::vector<ActivityId> ids;
    for (std::int64_t i = 0; i < 6; ++i) {
      const LaneId lane = sim.add_lane();
      const std::int64_t src = 8 * i + i, dst = 8 * (i + 8) + i;  // rail i, leaf 0/1 -> leaf 2/3
      ids.push_back(sim.add_transfer(lane, src, dst, 1e6 * static_cast<double>(1 << i)));
    }
    sim.run();
    std::vector<double> t;
    for (ActivityId a : ids) t.push_back(duration(sim, a));
    return t;
  });
}

TEST(NetworkSimulation, RailZoneAndStarAgreeOnUncontendedTransfers) {
  const std::vector<double> rail = uncontended_transfers(PlatformKind::kRailFatTree);
  const std::vector<double> star = uncontended_transfers(PlatformKind::kFlatStar);
  ASSERT_EQ(rail.size(), 6u);
  ASSERT_EQ(star.size(), 6u);
  for (std::size_t i = 0; i < rail.size(); ++i) {
    const double expected = kCrossLeafLat + 1e6 * static_cast<double>(1 << i) / kNicBw;
    EXPECT_NEAR(rail[i], expected, 1e-9 * expected);
    EXPECT_NEAR(star[i], rail[i], 1e-9 * rail[i]);
  }
}

TEST(NetworkSimulation, TransferTimesFollowRoutes) {
  constexpr double b = 100e6;
  const std::vector<double> out = run_in_child([&] {
    NetworkSimulation sim(h100_like(4), 128);
    const LaneId lane = sim.add_lane();
    const ActivityId same_leaf = sim.add_transfer(lane, 0, 8, b);
    const ActivityId cross_leaf = sim.add_transfer(lane, 0, 8 * 4, b);
    const ActivityId nvlink = sim.add_transfer(lane, 0, 7, b);
    const ActivityId pxn = sim.add_transfer(lane, 1, 8 + 6, b);
    const ActivityId self = sim.add_transfer(lane, 3, 3, b);
    sim.run();
    return std::vector<double>{duration(sim, same_leaf), duration(sim, cross_leaf), duration(sim, nvlink),
                               duration(sim, pxn), duration(sim, self)};
  });
  ASSERT_EQ(out.size(), 5u);
  EXPECT_NEAR(out[0], kSameLeafLat + b / kNicBw, 1e-12);
  EXPECT_NEAR(out[1], kCrossLeafLat + b / kNicBw, 1e-12);
  EXPECT_NEAR(out[2], kNvlLat + b / kNvlBw, 1e-12);
  EXPECT_NEAR(out[3], kNvlLat + kSameLeafLat + b / kNicBw, 1e-12);
  EXPECT_NEAR(out[4], b / 3.35e12, 1e-12);  // loopback at HBM speed, no latency
}

// ECMP: the fabric's hash spreads connections over a leaf's planes as balls into bins: over
// many seeds, the busiest plane's load follows the closed form the estimate charges.
TEST(RailFabric, EcmpHashIsBallsInBins) {
  ClusterSpec c = h100_like(16);
  c.fabric.routing = "ecmp";
  c.fabric.uplinks_per_leaf = 16;
  c.fabric.flows_per_peer = 1;
  const int seeds = 4000;
  std::vector<double> hist(17, 0.0);
  for (int seed = 0; seed < seeds; ++seed) {
    RailFabric f(c, 8 * 32, static_cast<std::uint64_t>(seed));
    ASSERT_TRUE(f.ecmp());
    ASSERT_EQ(f.uplinks_per_leaf(), 16);
    // Rail 0 of each node of leaf 0 sends to the node 16 further on (leaf 1).
    std::vector<int> load(static_cast<std::size_t>(f.link_count()), 0);
    int worst = 0;
    for (std::int64_t node = 0; node < 16; ++node) {
      const FabricRoute r = f.route(node * 8, (node + 16) * 8);
      ASSERT_EQ(r.size, 4);  // NIC up, plane up, plane down, NIC down
      EXPECT_EQ(f.link(r.links[1]).kind, FabricLinkKind::kLeafUp);
      EXPECT_EQ(f.link(r.links[1]).bandwidth_bytes_per_s, kNicBw);
      EXPECT_EQ(f.link(r.links[1]).index % 16, f.link(r.links[2]).index % 16);  // one spine plane
      worst = std::max(worst, ++load[static_cast<std::size_t>(r.links[1])]);
    }
    ++hist[static_cast<std::size_t>(worst)];
  }
  double mean = 0;
  for (std::size_t k = 0; k < hist.size(); ++k) mean += static_cast<double>(k) * hist[k] / seeds;
  const std::vector<int> one_leaf{16};
  EXPECT_NEAR(mean, expected_max_load_factor(one_leaf, 16, 1.0), 0.05);
  for (int limit = 2; limit <= 5; ++limit) {
    double at_most = 0;
    for (int k = 0; k <= limit; ++k) at_most += hist[static_cast<std::size_t>(k)] / seeds;
    EXPECT_NEAR(at_most, max_bin_load_cdf(16, 16, limit), 0.025) << limit;
  }
  // Names and lookups carry the plane.
  RailFabric f(c, 8 * 32, 1);
  EXPECT_EQ(f.link_name(f.leaf_up(0, 1, 5)), "leaf_up.r0.l1.u5");
  EXPECT_EQ(f.find_link("leaf_down.r3.l0.u15"), f.leaf_down(3, 0, 15));
}

// Two connections hashed onto one plane share it; on different planes each runs at NIC speed.
TEST(NetworkSimulation, EcmpCollisionsShareAPlane) {
  ClusterSpec c = h100_like(4);
  c.fabric.routing = "ecmp";
  c.fabric.uplinks_per_leaf = 4;
  c.fabric.flows_per_peer = 1;
  // Find a seed where nodes 0 and 1 (leaf 0) hash onto one plane towards nodes 4 and 5, and one
  // where they do not.
  int same = -1, apart = -1;
  for (int seed = 0; seed < 64 && (same < 0 || apart < 0); ++seed) {
    RailFabric f(c, 64, static_cast<std::uint64_t>(seed));
    const bool collide = f.route(0, 32).links[1] == f.route(8, 40).links[1];
    (collide ? same : apart) = seed;
  }
  ASSERT_GE(same, 0);
  ASSERT_GE(apart, 0);
  constexpr double b = 100e6;
  for (int seed : {same, apart}) {
    const std::vector<double> out = run_in_child([&] {
      NetworkSimulation sim(c, 64, PlatformKind::kRailFatTree, static_cast<std::uint64_t>(seed));
      const LaneId l0 = sim.add_lane(), l1 = sim.add_lane();
      const ActivityId a = sim.add_transfer(l0, 0, 32, b), x = sim.add_transfer(l1, 8, 40, b);
      sim.run();
      return std::vector<double>{duration(sim, a), duration(sim, x)};
    });
    ASSERT_EQ(out.size(), 2u);
    const double alone = kCrossLeafLat + b / kNicBw;
    if (seed == same) {
      EXPECT_NEAR(out[0], kCrossLeafLat + 2 * b / kNicBw, 1e-6 * alone);
    } else {
      EXPECT_NEAR(out[0], alone, 1e-9 * alone);
      EXPECT_NEAR(out[1], alone, 1e-9 * alone);
    }
  }
}

TEST(NetworkSimulation, LeafAndSpineOversubscriptionFollowMaxMin) {
  constexpr double b = 200e6;
  // Leaf 1:2 -> a leaf's uplinks carry 4 x 50 / 2 = 100 GB/s; four cross-leaf flows from the
  // four nodes of leaf 0 share it: 25 GB/s each. Flows inside the leaf are unaffected.
  const std::vector<double> leaf = run_in_child([&] {
    NetworkSimulation sim(h100_like(4, 2.0), 128);
    std::vector<ActivityId> cross;
    for (std::int64_t n = 0; n < 4; ++n) cross.push_back(sim.add_transfer(sim.add_lane(), 8 * n, 8 * (n + 4), b));
    const ActivityId inside = sim.add_transfer(sim.add_lane(), 1, 8 + 1, b);
    sim.run();
    std::vector<double> t;
    for (ActivityId a : cross) t.push_back(duration(sim, a));
    t.push_back(duration(sim, inside));
    return t;
  });
  ASSERT_EQ(leaf.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(leaf[i], kCrossLeafLat + b / 25e9, 1e-12);
  EXPECT_NEAR(leaf[4], kSameLeafLat + b / kNicBw, 1e-12);

  // Spine 1:3 over 3 leaf groups: the rail's spine tier carries 3 x 200 / 3 = 200 GB/s for all
  // its cross-leaf flows. Eight flows (leaf 0 -> 1 and leaf 1 -> 2) get 25 GB/s each; the leaf
  // uplinks (200 GB/s each) are not the bottleneck.
  const std::vector<double> spine = run_in_child([&] {
    NetworkSimulation sim(h100_like(4, 1.0, 3.0), 96);
    std::vector<ActivityId> cross;
    for (std::int64_t n = 0; n < 4; ++n) {
      cross.push_back(sim.add_transfer(sim.add_lane(), 8 * n, 8 * (n + 4), b));
      cross.push_back(sim.add_transfer(sim.add_lane(), 8 * (n + 4), 8 * (n + 8), b));
    }
    sim.run();
    std::vector<double> t;
    for (ActivityId a : cross) t.push_back(duration(sim, a));
    return t;
  });
  ASSERT_EQ(spine.size(), 8u);
  for (double t : spine) EXPECT_NEAR(t, kCrossLeafLat + b / 25e9, 1e-12);
}

TEST(NetworkSimulation, SlowAndFailedLinks) {
  constexpr double b = 100e6;
  const std::vector<double> out = run_in_child([&] {
    NetworkSimulation sim(h100_like(4), 64);
    sim.scale_link_bandwidth("nic_up.n0.r0", 0.5);
    const LaneId lane = sim.add_lane();
    const ActivityId slow = sim.add_transfer(lane, 0, 8, b);
    const ActivityId other_rail = sim.add_transfer(lane, 1, 9, b);
    sim.run();
    // From t0 + 1 ms on the NIC is back to full speed: the first millisecond carries 25 MB.
    const double t0 = sim.now_s();
    sim.scale_link_bandwidth("nic_up.n0.r0", 1.0, t0 + 1e-3);
    const ActivityId recovering = sim.add_transfer(lane, 0, 8, b);
    sim.run();
    double failed = 0;
    sim.fail_link("leaf_up.r0.l0");
    sim.add_transfer(lane, 0, 8, b);  // stays inside the leaf: fine
    sim.add_transfer(lane, 0, 8 * 4, b);
    try {
      sim.run();
    } catch (const NetworkFailure& e) {
      failed = std::strstr(e.what(), "leaf_up.r0.l0") != nullptr ? 1 : 0;
    }
    return std::vector<double>{duration(sim, slow), duration(sim, other_rail), duration(sim, recovering), failed};
  });
  ASSERT_EQ(out.size(), 4u);
  EXPECT_NEAR(out[0], kSameLeafLat + b / 25e9, 1e-12);
  EXPECT_NEAR(out[1], kSameLeafLat + b / kNicBw, 1e-12);
  // Latency first (1.6 us at no progress), then 25 GB/s until 1 ms, then 50 GB/s.
  const double at_half = 1e-3 - kSameLeafLat;
  EXPECT_NEAR(out[2], kSameLeafLat + at_half + (b - 25e9 * at_half) / kNicBw, 1e-9);
  EXPECT_EQ(out[3], 1.0);
}

TEST(NetworkSimulation, DependenciesLanesAndAllToAll) {
  constexpr double s = 64e6;
  const std::vector<double> out = run_in_child([&] {
    NetworkSimulation sim(h100_like(32), 16);
    const LaneId compute = sim.add_lane(0), comm = sim.add_lane(8);
    sim.set_rank_slowdown(0, 1.5);
    const ActivityId c = sim.add_compute(compute, 0, 2e-3);  // 3 ms with the slowdown
    const ActivityId t = sim.add_transfer(comm, 0, 8, 50e6, {{c}});
    const ActivityId d = sim.add_delay(compute, 1e-3);  // after c on the same lane
    const ActivityId late = sim.add_delay(comm, 0.0);
    sim.set_not_before(late, 0.5);
    std::vector<std::int64_t> all(16);
    std::iota(all.begin(), all.end(), 0);
    const ActivityId a2a = sim.add_all_to_all(comm, all, s, {{d}});
    sim.run();
    return std::vector<double>{sim.timing(c).end_s, sim.timing(t).start_s, sim.timing(t).end_s,
                               sim.timing(d).start_s, sim.timing(d).end_s,
                               sim.timing(late).start_s, duration(sim, a2a),
                               sim.link_utilisation(sim.fabric().nic_up(0), sim.timing(a2a).end_s)};
  });
  ASSERT_EQ(out.size(), 8u);
  EXPECT_DOUBLE_EQ(out[0], 3e-3);
  EXPECT_DOUBLE_EQ(out[1], 3e-3);  // starts when its dependency ends
  EXPECT_NEAR(out[2], 3e-3 + kSameLeafLat + 50e6 / kNicBw, 1e-12);
  EXPECT_DOUBLE_EQ(out[3], 3e-3);
  EXPECT_DOUBLE_EQ(out[4], 4e-3);
  EXPECT_DOUBLE_EQ(out[5], 0.5);
  // Two nodes of 8: each NIC carries 8 * S/16 to its rail peer; NVLink traffic is faster.
  EXPECT_NEAR(out[6], kSameLeafLat + s / 2 / kNicBw, 1e-9);
  EXPECT_GT(out[7], 0.0);
}

TEST(NetworkSimulation, LaterDependenciesAndCycles) {
  const std::vector<double> out = run_in_child([] {
    NetworkSimulation sim(h100_like(4), 16);
    const LaneId a = sim.add_lane(), b = sim.add_lane();
    const ActivityId first = sim.add_delay(a, 1e-3);
    const ActivityId waits = sim.add_delay(a, 1e-3);  // waits on an activity added below
    const ActivityId later = sim.add_delay(b, 5e-3);
    sim.add_dependency(later, waits);
    sim.run();
    double cycle = 0;
    const ActivityId x = sim.add_delay(a, 1e-3), y = sim.add_delay(b, 1e-3, {{x}});
    sim.add_dependency(y, x);
    try {
      sim.run();
    } catch (const std::invalid_argument&) {
      cycle = 1;
    }
    return std::vector<double>{sim.timing(first).end_s, sim.timing(waits).start_s, cycle};
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_DOUBLE_EQ(out[0], 1e-3);
  EXPECT_DOUBLE_EQ(out[1], 5e-3);
  EXPECT_EQ(out[2], 1.0);
}

// A mixed scenario: rings, all-to-all, transfers, compute, background traffic and a slow link.
std::vector<double> mixed_scenario() {
  NetworkSimulation sim(h100_like(4), 200);  // partial: 25 nodes, last leaf group has one node
  sim.scale_link_bandwidth("leaf_up.r0.l1", 0.3, 2e-3);
  sim.add_background_flow({0, 8 * 20, 300e6}, 0.0);
  std::vector<ActivityId> last;
  for (std::int64_t lane_i = 0; lane_i < 8; ++lane_i) {
    const LaneId lane = sim.add_lane(lane_i);
    std::vector<std::int64_t> ring;
    for (std::int64_t n = 0; n < 25; ++n) ring.push_back(8 * n + lane_i);
    const ActivityId c = sim.add_compute(lane, lane_i, 1e-3 * static_cast<double>(lane_i + 1));
    const ActivityId r = sim.add_ring_collective(lane, RingCollective::kAllReduce, ring, 100e6, {{c}});
    const ActivityId p = sim.add_transfer(lane, lane_i, 8 * 24 + lane_i, 20e6, {{r}});
    last.push_back(sim.add_all_to_all(lane, std::vector<std::int64_t>{0, 1, 8, 9, 16, 17}, 10e6, {{p}}));
  }
  sim.run();
  std::vector<double> out;
  for (const ActivityTiming& t : sim.timings()) {
    out.push_back(t.start_s);
    out.push_back(t.end_s);
  }
  out.insert(out.end(), sim.background_finish_s().begin(), sim.background_finish_s().end());
  return out;
}

TEST(NetworkSimulation, DeterministicBitForBit) {
  const std::vector<double> a = run_in_child(mixed_scenario);
  const std::vector<double> b = run_in_child(mixed_scenario);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)), 0);
}

TEST(NetworkSimulation, RejectsBadInput) {
  const std::vector<double> out = run_in_child([] {
    NetworkSimulation sim(h100_like(4), 16);
    const LaneId lane = sim.add_lane();
    double errors = 0;
    auto count = [&](auto&& f) {
      try {
        f();
      } catch (const std::invalid_argument&) {
        errors += 1;
      }
    };
    count([&] { sim.add_transfer(lane, 0, 16, 1.0); });
    count([&] { sim.add_transfer(lane + 1, 0, 1, 1.0); });
    count([&] { sim.add_transfer(lane, 0, 1, 1.0, {{5}}); });
    count([&] { sim.scale_link_bandwidth("nope", 0.5); });
    count([&] { sim.scale_link_bandwidth("nic_up.n0.r0", 0.0); });
    return std::vector<double>{errors, static_cast<double>(sim.activity_count())};
  });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], 5.0);
  EXPECT_EQ(out[1], 0.0);
}

}  // namespace
}  // namespace clustersim::sim
