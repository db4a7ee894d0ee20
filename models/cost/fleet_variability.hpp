#pragma once
// What a fleet's variability costs a synchronous job (docs/estimate.md, "Fleet variability"):
// the job runs at the pace of its slowest host, and each compute activity of a TP (and CP)
// group at the pace of the group's slowest GPU. The estimate takes expected maxima in closed
// form (numerical integration of the order statistic); the replay draws every host and
// activity from the same distributions with a seed. Both use the functions here.
#include <cstdint>

#include "models/inputs/fleet_spec.hpp"

namespace clustersim {

// E[max of n independent standard normals] (0 for n = 1).
double expected_max_standard_normal(std::int64_t n);

// E[max over `hosts` hosts of the persistent host factor]: with probability
// slow_host_fraction the host is slow_host_slowdown times slower, and every host's speed
// spreads as 1 + N(0, host_speed_cv).
double expected_slowest_host_factor(const FleetSpec& fleet, std::int64_t hosts);

// E[max over a group of `gpus` GPUs of the per-activity factor 1 + N(0, op_jitter_cv)].
double expected_group_jitter_factor(const FleetSpec& fleet, std::int64_t gpus);

// E[max over `replicas` DP replicas of a replica's compute over its `microbatches` micro-batches]
// relative to the mean, when each micro-batch's data scales its cost by 1 + N(0, data_imbalance_cv):
// 1 + cv · E[max of replicas normals] / sqrt(microbatches). The DP collectives wait for the slowest.
double expected_slowest_replica_data_factor(const FleetSpec& fleet, std::int64_t replicas, std::int64_t microbatches);

// A small deterministic generator (splitmix64) so that the same seed gives the same draws on
// every platform (std::normal_distribution is implementation-defined).
class FleetRandom {
 public:
  explicit FleetRandom(std::uint64_t seed) : state_(seed) {}
  double uniform();         // in (0, 1)
  double standard_normal();  // Box-Muller

 private:
  std::uint64_t next();
  std::uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

double draw_host_factor(const FleetSpec& fleet, FleetRandom& random);
double draw_group_jitter_factor(const FleetSpec& fleet, std::int64_t gpus, FleetRandom& random);

}  // namespace clustersim
