#pragma once
// Turns measurement records into a profile: groups records by the key each cost model is
// fitted per, runs the fitters, records ranges and errors, and (when a cluster is given) adds
// roofline defaults, flagged as such, for what no measurement covers.
#include <optional>
#include <string>
#include <vector>

#include "models/inputs/cluster_spec.hpp"
#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

struct ProfileBuildOptions {
  std::string name;
  std::string gpu;                        // defaults to the first source's system.gpu
  std::optional<ClusterSpec> cluster;     // for roofline defaults, SM count, GPUs per node
  std::string created_by;
};

// Concatenates record sets; a source id used by two sets is an error (InputErrors) unless the
// two sources are identical.
RecordSet merge_record_sets(const std::vector<std::pair<std::string, RecordSet>>& sets);

// Throws InputErrors when a fit needs a fact no source or cluster gives (e.g. SM count).
Profile build_profile(RecordSet records, const ProfileBuildOptions& options);

// Median of a record's samples, the time every fitter fits against.
double representative_time_s(const MeasurementRecord& record);

}  // namespace clustersim::calibrate
