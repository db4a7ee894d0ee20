#include "tests/fuzz/loader_targets.hpp"

#include "models/cost/profile_json.hpp"
#include "models/cost/record_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "models/inputs/serve_workload.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/inputs/validation_case.hpp"
#include "traces/kineto_trace_reader.hpp"
#include "traces/nccl_tests_json_reader.hpp"
#include "traces/nccl_tests_log_reader.hpp"
#include "traces/published_table_reader.hpp"
#include "traces/request_trace_reader.hpp"
#include "traces/straggler_job_meta_reader.hpp"
#include "traces/straggler_trace_reader.hpp"

namespace clustersim::fuzz {

std::map<std::string, LoaderTarget> register_loader_targets() {
  std::map<std::string, LoaderTarget> t;
  t["model_config"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_model_spec(path, "", diag);
  };
  t["cluster"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_cluster_spec(path, "", diag);
  };
  t["plan"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_train_plan(path, diag);
  };
  t["megatron_args"] = [](const std::string&, const std::string& text) {
    Diagnostics diag;
    train_plan_from_megatron_args(text, diag);
  };
  t["deployment"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_serve_deployment(path, 8, diag);
  };
  t["workload"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_workload_spec(path, diag);
  };
  t["validation_cases"] = [](const std::string& path, const std::string&) { load_validation_cases(path); };
  t["profile"] = [](const std::string& path, const std::string&) { load_profile(path); };
  t["records"] = [](const std::string& path, const std::string&) { load_record_set(path); };
  t["nccl_tests_log"] = [](const std::string&, const std::string& text) { read_nccl_tests_log(text, "fuzz"); };
  t["nccl_tests_json"] = [](const std::string& path, const std::string&) {
    read_nccl_tests_json(read_json_document(path, "fuzz").value, path);
  };
  t["kineto"] = [](const std::string& path, const std::string&) {
    read_kineto_trace(read_json_document(path, "fuzz").value, path);
  };
  t["published_table"] = [](const std::string&, const std::string& text) { read_published_table(text, "fuzz"); };
  t["straggler_trace"] = [](const std::string& path, const std::string&) { traces::read_straggler_trace(path); };
  t["straggler_meta"] = [](const std::string& path, const std::string&) { traces::read_straggler_job_meta(path); };
  t["request_trace_azure"] = [](const std::string& path, const std::string&) {
    traces::read_request_trace({path, "azure"});
  };
  t["request_trace_mooncake"] = [](const std::string& path, const std::string&) {
    traces::read_request_trace({path, "mooncake"});
  };
  return t;
}

}  // namespace clustersim::fuzz
