#pragma once
// Inputs the serving tests load from the repository: model presets, the a100-hdr cluster and
// profile, deployments and workloads (inline JSON or files). Needs CLUSTERSIM_SOURCE_DIR.
#include <string>

#include "models/cost/cost_model.hpp"
#include "models/cost/profile_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "models/inputs/serve_workload.hpp"

namespace clustersim::sim {

inline const std::string kSource = CLUSTERSIM_SOURCE_DIR;

inline ModelSpec model(const std::string& name) {
  Diagnostics diag;
  return load_model_spec(kSource + "/configs/models/" + name + ".json", name, diag);
}
inline ModelSpec model_file(const std::string& path) {
  Diagnostics diag;
  return load_model_spec(kSource + "/" + path, "", diag);
}
inline ClusterSpec a100() {
  Diagnostics diag;
  return load_cluster_spec(kSource + "/configs/clusters/a100-hdr.json", "a100-hdr", diag);
}
inline CostModel a100_cost(const ClusterSpec& c) {
  return CostModel(load_profile(kSource + "/configs/profiles/a100.json"), "a100.json", c);
}
inline ServeDeployment deployment(const std::string& json) {
  Diagnostics diag;
  return load_serve_deployment(json, 8, diag);
}
inline WorkloadSpec workload(const std::string& json) {
  Diagnostics diag;
  return load_workload_spec(json, diag);
}

}  // namespace clustersim::sim
