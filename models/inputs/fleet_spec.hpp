#pragma once
// A fleet profile (configs/fleets/<name>.json): how the GPUs of a production fleet differ from
// the nominal GPU a profile was measured on, and the fixed host costs of a training step. Every
// number carries its source. Format and model: docs/simulate.md, "Fleet variability".
#include <string>

#include "models/inputs/input_error.hpp"

namespace clustersim {

struct FleetSpec {
  std::string name = "none";  // "none": every mechanism off
  std::string source;         // the file it came from
  double slow_host_fraction = 0;   // share of hosts (nodes) persistently slow
  double slow_host_slowdown = 1;   // their compute takes this many times longer
  double host_speed_cv = 0;        // persistent per-host speed factor 1 + N(0, cv)
  double op_jitter_cv = 0;         // per GPU and compute activity, factor 1 + N(0, cv)
  double data_imbalance_cv = 0;    // per DP replica and micro-batch (its data), factor 1 + N(0, cv)
  double data_loading_s = 0;       // exposed get_batch at the start of each step
  bool enabled() const { return name != "none"; }
};

// `source`: "none", a preset name in configs/fleets/, a file, or inline JSON. `flag` names the
// option or key that gave it, for errors.
FleetSpec load_fleet_spec(const std::string& source, const std::string& flag, Diagnostics& diag);

}  // namespace clustersim
