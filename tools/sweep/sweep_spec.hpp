#pragma once
// A sweep file (docs/sweep.md): the axes of a planning question and its tier rule, read strictly
// (every error with the file and JSON pointer, then one InputErrors), and expanded into tasks.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tools/sweep/sweep_task.hpp"

namespace clustersim::cli {

struct SweepScenario {
  std::string name;                  // how rows and the report name it
  std::string file;                  // scenario JSON (resolved path); empty: no perturbation
  std::vector<std::uint64_t> seeds;  // one simulated point per seed; {0}: the scenario's own seed
};

// The tier rule: every training point is estimated; the `best` of each group (points equal in
// the `per` fields) by `by` are simulated under every scenario and seed.
struct SimulateTier {
  std::size_t best = 0;                                     // 0: nothing is simulated
  std::vector<std::string> per = {"model", "cluster", "gpus"};
  std::string by = "mfu";                                   // a number of the estimate's JSON
};

// A grid of plans (docs/sweep.md): each axis a plan key with its values, or a label whose values
// are objects of plan keys that go together; axes in alphabetical order. Its plans are made when
// the tasks are, not when the file is read: plan i takes the axes' values in mixed radix, the
// last axis varying fastest.
struct PlanGrid {
  std::vector<std::pair<std::string, std::vector<nlohmann::json>>> axes;
  std::size_t size() const;
  nlohmann::ordered_json plan(std::size_t i) const;  // keys sorted
};

struct ServingAxes {
  std::string model, cluster, profile;
  std::vector<std::string> deployments, workloads;  // resolved paths or inline JSON
  std::vector<double> rates_per_s;
  double slo_ttft_s = 0, slo_tpot_s = 0;
};

struct SweepSpec {
  std::string file;
  std::vector<std::string> models, clusters;
  std::vector<std::int64_t> gpus;
  std::string profile, fleet;                      // empty: the cluster's
  std::vector<PlanGrid> grids;
  std::vector<std::string> plan_presets;           // plans named by preset or file
  struct Search {
    std::size_t top = 0;
    std::int64_t global_batch_size = 0, seq_length = 0;
  };
  std::vector<Search> searches;
  SimulateTier simulate;
  std::vector<SweepScenario> scenarios;  // at least one ("no scenario" when the file names none)
  std::vector<ServingAxes> serving;
};

// Reads and checks a sweep file; relative paths in it are taken from the file's folder.
SweepSpec read_sweep_spec(const std::string& path);

// Every estimate and serve task, in a fixed order (models, clusters, GPU counts, plans; then
// serving). Searches ("top K of search") run here, in this process.
std::vector<SweepTask> first_tier_tasks(const SweepSpec& spec);

// The simulate tasks chosen from the estimate rows by the tier rule, in a fixed order.
std::vector<SweepTask> simulate_tasks(const SweepSpec& spec, const std::vector<SweepTask>& estimates,
                                      const std::vector<nlohmann::json>& estimate_rows);

// The group a task belongs to for the tier rule and for --shard (its `per` fields).
std::string tier_group(const SweepSpec& spec, const SweepTask& task);

}  // namespace clustersim::cli
