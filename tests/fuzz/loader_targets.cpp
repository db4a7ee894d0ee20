#include "tests/fuzz/loader_targets.hpp"

#include "models/cost/profile_json.hpp"
#include "models/cost/record_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/document_lengths.hpp"
#include "models/inputs/fleet_spec.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/routing_spec.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "models/inputs/serve_workload.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/inputs/validation_case.hpp"
#include "sim/training/training_scenario.hpp"
#include "sim/whatif/whatif_scenario.hpp"
#include "tools/sweep/results_file.hpp"
#include "tools/sweep/sweep_spec.hpp"
#include "traces/engine_throughput_table.hpp"
#include "traces/kineto_trace_reader.hpp"
#include "traces/nccl_tests_json_reader.hpp"
#include "traces/nccl_tests_log_reader.hpp"
#include "traces/published_table_reader.hpp"
#include "traces/request_trace_reader.hpp"
#include "traces/straggler_job_meta_reader.hpp"
#include "traces/straggler_trace_reader.hpp"

namespace clustersim::fuzz {

namespace {

// The cluster a scenario is checked against: the shipped H100 preset (ranks, nodes, links).
const ClusterSpec& scenario_cluster() {
  static const ClusterSpec cluster = [] {
    Diagnostics diag;
    return load_cluster_spec(CLUSTERSIM_DEFAULT_CONFIG_DIR "/clusters/h100-ndr.json", "h100-ndr", diag);
  }();
  return cluster;
}

// A JSON string literal of `path` (the fuzzed file's /proc/self/fd path needs no escaping, but a
// committed finding's path might).
std::string json_string(const std::string& path) { return nlohmann::json(path).dump(); }

}  // namespace

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
  t["fleet"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_fleet_spec(path, "--fleet", diag);
    diag.throw_if_errors();
  };
  t["training_scenario"] = [](const std::string& path, const std::string&) {
    sim::read_training_scenario(path, scenario_cluster(), 1024);
  };
  t["whatif_scenario"] = [](const std::string& path, const std::string&) { sim::read_whatif_scenarios(path); };
  t["sweep_spec"] = [](const std::string& path, const std::string&) { cli::read_sweep_spec(path); };
  t["sweep_results"] = [](const std::string& path, const std::string&) {
    long cut_at = -1;
    cli::read_result_rows(path, &cut_at);
  };
  t["routing_histogram"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_routing_histogram(path, diag);
    diag.throw_if_errors();
  };
  // The histogram file a plan's document_lengths names.
  t["document_lengths"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    const nlohmann::json plan = {{"document_lengths", path}};
    JsonObjectReader reader(diag, "fuzz-plan.json", "", plan);
    read_document_lengths(reader, "document_lengths", "");
    diag.throw_if_errors();
  };
  // The CSV of (prompt_len, output_len) rows a workload's "pairs" names.
  t["workload_pairs"] = [](const std::string& path, const std::string&) {
    Diagnostics diag;
    load_workload_spec(R"({"pairs": {"path": )" + json_string(path) + R"(}, "count": 1, "arrival": {"process": "poisson", "rate_per_s": 1}})", diag);
    diag.throw_if_errors();
  };
  // A published engine-throughput table (serve-validate).
  t["engine_throughput"] = [](const std::string& path, const std::string&) { load_engine_throughput_table(path); };
  return t;
}

}  // namespace clustersim::fuzz
