#pragma once
// Collectives lowered to flows on the rail fabric (plain C++, no SimGrid).
//
// Ring collectives (NCCL's ring algorithm over the group in the order given): G ranks, buffer S
// bytes per rank (all-reduce: the buffer; all-gather: the gathered output; reduce-scatter: the
// input). Per step every rank sends S/G bytes to its successor; all-reduce takes 2(G-1) steps,
// all-gather and reduce-scatter G-1.
//   aggregated: one flow per hop carrying steps*S/G bytes, then the remaining (steps-1) hop
//               latencies as a sleep (the slowest hop's latency). Exact versus per-step when every
//               step is gated by the same hop; O(G) flows.
//   per-step:   steps phases of G flows of S/G bytes each (validation only: O(G^2) flows).
// All-to-all (every rank sends S/G to every other rank, S = bytes per rank), node-pair
// aggregated: for each ordered pair of nodes (a, b) and each group rank d on b, one flow from the
// GPU of node a on d's rail to d carrying n_a * S/G (n_a = group ranks on a): PXN's rail-aligned
// traffic with the NVLink gather folded away; inside a node, one flow per rank to its successor
// among the node's group ranks carrying (n_a - 1) * S/G, which loads every NVLink link exactly as
// the real exchange does. O(G * nodes) flows.
#include <cstdint>
#include <span>
#include <vector>

#include "sim/platform/execution_plan.hpp"
#include "sim/platform/rail_fabric.hpp"

namespace clustersim::sim {

enum class RingCollective { kAllReduce, kAllGather, kReduceScatter };
enum class RingEncoding { kAggregated, kPerStep };

std::int64_t ring_steps(RingCollective kind, std::int64_t group_size);
// Bytes each rank sends to its successor over the whole collective: steps * S / G.
double ring_bytes_per_hop(RingCollective kind, std::int64_t group_size, double bytes_per_rank);
// Closed-form time of an isolated ring: steps * (alpha + S / (G * B)).
double ring_closed_form_s(RingCollective kind, std::int64_t group_size, double bytes_per_rank,
                          double hop_latency_s, double hop_bandwidth_bytes_per_s);

// Appends the ring's phases and flows; group ranks are GPU indices, group.size() >= 2.
// `hop_latency_s` is the largest route latency among the hops (it gates every step).
void append_ring(RingCollective kind, RingEncoding encoding, std::span<const std::int64_t> group,
                 double bytes_per_rank, double hop_latency_s, std::vector<PlanPhase>& phases,
                 std::vector<PlanFlow>& flows);

// Appends one phase with the node-pair aggregated all-to-all flows.
void append_all_to_all(const RailFabric& fabric, std::span<const std::int64_t> group,
                       double bytes_per_rank, std::vector<PlanPhase>& phases,
                       std::vector<PlanFlow>& flows);

}  // namespace clustersim::sim
