#pragma once
// The expected slowdown ECMP hash collisions give the pipeline transfers of a plan: every
// connection between neighbouring stages that leaves its leaf hashes each of its
// flows_per_peer flows onto one of the leaf's uplinks (and the same spine plane down into the
// destination leaf); the slowest connection runs at 1 / max(1, load · NIC / (flows · uplink))
// of its rate. docs/estimate.md, "ECMP".
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/parallel_layout.hpp"

namespace clustersim {

// E[slowest transfer's time / its uncontended time] over the job's forward and backward
// transfers at every stage boundary, each uplink (and downlink) group an independent
// balls-in-bins draw. 1 without ECMP ("routing": "adaptive") or without pipeline parallelism.
// The estimate charges it to every transfer: an upper bound on the pace of the slowest
// pipeline, whose transfers are slow at one boundary only; the replay hashes each connection.
double expected_ecmp_send_factor(const ParallelLayout& layout, const ClusterSpec& cluster);

}  // namespace clustersim
