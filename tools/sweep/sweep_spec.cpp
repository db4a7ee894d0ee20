#include "tools/sweep/sweep_spec.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "models/inputs/json_reader.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/inputs/train_plan.hpp"
#include "tools/cli_common.hpp"
#include "tools/command_line.hpp"
#include "tools/sweep/content_hash.hpp"

namespace clustersim::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr std::size_t kMaxTasks = 1'000'000;
const std::vector<std::string> kGroupFields = {"model", "cluster", "gpus", "plan"};

// Reading context: the file, its folder (relative paths start there) and the diagnostics.
struct Reader {
  Diagnostics& diag;
  std::string file;
  fs::path folder;

  void error(const std::string& pointer, std::string message, std::string hint = {}) {
    diag.error(file, pointer, std::move(message), std::move(hint));
  }

  // A path relative to the sweep file when it names a file there; otherwise as written (a
  // preset name, inline JSON, or a path from the working directory).
  std::string local(const std::string& value) const {
    if (value.empty() || looks_like_inline_json(value) || fs::path(value).is_absolute()) return value;
    std::error_code ec;
    const fs::path there = folder / value;
    return fs::exists(there, ec) ? there.lexically_normal().string() : value;
  }

  // A preset name or file of `kind` (configs/<kind>/), checked now so the error names the sweep
  // file's pointer rather than every point's command.
  std::string input(const nlohmann::json& value, const std::string& pointer, const std::string& kind) {
    if (!value.is_string() || value.get<std::string>().empty()) {
      error(pointer, fmt::format("{} is not a name or path", describe_json_value(value)),
            fmt::format("a preset in configs/{}/ or a file", kind));
      return {};
    }
    const std::string given = local(value.get<std::string>());
    try {
      resolve_input(given, kind, pointer);
    } catch (const InputErrors& e) {
      for (const auto& inner : e.errors()) error(pointer, inner.message, inner.hint);
    }
    return given;
  }

  // A file that must exist (a scenario, deployment or workload), or inline JSON.
  std::string file_input(const nlohmann::json& value, const std::string& pointer, const std::string& what) {
    if (value.is_object()) return value.dump();
    if (!value.is_string()) {
      error(pointer, fmt::format("{} is not a path", describe_json_value(value)), fmt::format("a {} JSON file", what));
      return {};
    }
    const std::string given = local(value.get<std::string>());
    std::error_code ec;
    if (!looks_like_inline_json(given) && !fs::is_regular_file(given, ec)) {
      error(pointer, fmt::format("no such {} file: {}", what, value.get<std::string>()),
            fmt::format("paths are taken from the sweep file's folder ({})", folder.empty() ? "." : folder.string()));
    }
    return given;
  }

  // A non-empty array, each element handed to `each(element, pointer)`.
  template <typename Each>
  void list(const nlohmann::json* value, const std::string& pointer, const std::string& what, Each each) {
    if (value == nullptr) return;
    if (!value->is_array() || value->empty()) {
      error(pointer, fmt::format("{} is not a non-empty list", describe_json_value(*value)), what);
      return;
    }
    for (std::size_t i = 0; i < value->size(); ++i) each((*value)[i], json_pointer_append(pointer, i));
  }
};

// More points than a sweep takes: an error before any is made (the limit is per file).
void refuse_beyond_limit(Reader& in, const std::string& pointer, const std::string& what, double points) {
  if (points > static_cast<double>(kMaxTasks)) {
    in.error(pointer, fmt::format("{} make {:.0f} points", what, points), fmt::format("at most {}", kMaxTasks));
  }
}

std::vector<std::string> inputs_list(Reader& in, JsonObjectReader& r, const std::string& key, const std::string& kind) {
  std::vector<std::string> out;
  const nlohmann::json* v = r.raw(key);
  if (v == nullptr) r.error(key, "missing", fmt::format("a list of presets in configs/{}/ or files", kind));
  in.list(v, r.pointer_of(key), fmt::format("a list of presets in configs/{}/ or files", kind),
          [&](const nlohmann::json& e, const std::string& p) { out.push_back(in.input(e, p, kind)); });
  return out;
}

// A grid (PlanGrid): each key a Megatron plan key with one value or a list of values, or a label
// whose values are objects of plan keys that go together ("pipeline": [{"pipeline_model_parallel_size":
// 16, "decoder_first_pipeline_num_layers": 7, ...}, ...]). Checked here, expanded into plans when
// the tasks are made. A key no plan reads would make every plan of the grid invalid: an error now.
void read_grid(Reader& in, const nlohmann::json& grid, const std::string& pointer, std::vector<PlanGrid>& grids) {
  if (!grid.is_object() || grid.empty()) {
    in.error(pointer, fmt::format("{} is not an object of plan keys", describe_json_value(grid)),
             "e.g. {\"tensor_model_parallel_size\": [4, 8], \"seq_length\": 8192}");
    return;
  }
  PlanGrid g;
  nlohmann::json keys = nlohmann::json::object();  // every plan key the grid sets, with a value of it
  std::map<std::string, std::string> key_pointers;  // where each is first set
  for (const auto& [key, value] : grid.items()) {
    const std::string p = json_pointer_append(pointer, key);
    std::vector<nlohmann::json> values = value.is_array() ? std::vector<nlohmann::json>(value.begin(), value.end())
                                                          : std::vector<nlohmann::json>{value};
    if (values.empty()) in.error(p, "an empty list gives no plans", "one value, or a list of values");
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::string vp = value.is_array() ? json_pointer_append(p, i) : p;
      if (values[i].is_array()) in.error(vp, "a list inside a list is not a plan value");
      if (values[i].is_object()) {
        for (const auto& [inner, v] : values[i].items()) {
          if (v.is_structured()) in.error(json_pointer_append(vp, inner), "a list or object is not a plan value");
          keys[inner] = v;
          key_pointers.emplace(inner, json_pointer_append(vp, inner));
        }
      } else {
        keys[key] = values[i];
        key_pointers.emplace(key, p);
      }
    }
    g.axes.emplace_back(key, std::move(values));
  }
  for (const auto& [key, hint] : unknown_plan_keys(keys)) in.error(key_pointers.at(key), "not a plan key", hint);
  if (in.diag.has_errors()) return;
  if (g.size() > kMaxTasks) {
    in.error(pointer, fmt::format("the grid makes more than {} plans", kMaxTasks), "fewer values per key");
    return;
  }
  grids.push_back(std::move(g));
}

void read_plans(Reader& in, JsonObjectReader& r, SweepSpec& spec) {
  const nlohmann::json* v = r.raw("plans");
  const std::string what = "a list of plan presets or files, {\"grid\": {...}} or {\"search\": {...}}";
  if (v == nullptr) r.error("plans", "missing", what);
  in.list(v, r.pointer_of("plans"), what, [&](const nlohmann::json& e, const std::string& p) {
    if (e.is_string()) {
      spec.plan_presets.push_back(in.input(e, p, "plans"));
      return;
    }
    JsonObjectReader entry(in.diag, in.file, p, e);
    if (!entry.is_object()) return;
    if (const nlohmann::json* grid = entry.raw("grid")) {
      read_grid(in, *grid, entry.pointer_of("grid"), spec.grids);
    } else if (entry.has("search")) {
      JsonObjectReader s = entry.object("search", true);
      SweepSpec::Search search;
      search.top = static_cast<std::size_t>(s.required_integer("top", 1, 1000).value_or(0));
      search.global_batch_size = s.required_integer("global_batch_size", 1, std::int64_t{1} << 30).value_or(0);
      search.seq_length = s.required_integer("seq_length", 1, std::int64_t{1} << 30).value_or(0);
      s.reject_unknown_keys();
      spec.searches.push_back(search);
    } else {
      in.error(p, "names neither \"grid\" nor \"search\"", what);
    }
    entry.reject_unknown_keys();
  });
}

void read_simulate(Reader& in, JsonObjectReader& t, SweepSpec& spec) {
  if (!t.has("simulate")) return;
  JsonObjectReader s = t.object("simulate", false);
  spec.simulate.best = static_cast<std::size_t>(s.required_integer("best", 0, 10000).value_or(0));
  if (auto by = s.choice("by", {"mfu", "tokens_per_s_per_gpu", "tokens_per_s", "tflops_per_gpu"})) spec.simulate.by = *by;
  if (const nlohmann::json* per = s.raw("per")) {
    spec.simulate.per.clear();
    in.list(per, s.pointer_of("per"), fmt::format("a list of {}", fmt::join(kGroupFields, ", ")),
            [&](const nlohmann::json& e, const std::string& p) {
              if (e.is_string() && std::find(kGroupFields.begin(), kGroupFields.end(), e.get<std::string>()) != kGroupFields.end()) {
                spec.simulate.per.push_back(e);
              } else {
                in.error(p, fmt::format("{} is not a field of a point", describe_json_value(e)),
                         fmt::format("one of {}", fmt::join(kGroupFields, ", ")));
              }
            });
  }
  s.reject_unknown_keys();
}

void read_scenarios(Reader& in, JsonObjectReader& t, SweepSpec& spec) {
  const nlohmann::json* v = t.raw("scenarios");
  in.list(v, t.pointer_of("scenarios"), "a list of {\"name\", \"file\", \"seeds\"}",
          [&](const nlohmann::json& e, const std::string& p) {
            JsonObjectReader r(in.diag, in.file, p, e);
            SweepScenario sc;
            sc.name = r.required_string("name").value_or("");
            if (const nlohmann::json* f = r.raw("file")) sc.file = in.file_input(*f, r.pointer_of("file"), "scenario");
            in.list(r.raw("seeds"), r.pointer_of("seeds"), "a list of seeds (integers >= 1)",
                    [&](const nlohmann::json& s, const std::string& sp) {
                      if (!s.is_number_integer() || s.get<std::int64_t>() < 1) {
                        in.error(sp, fmt::format("{} is not a seed", describe_json_value(s)), "an integer >= 1");
                      } else {
                        sc.seeds.push_back(s.get<std::uint64_t>());
                      }
                    });
            if (sc.seeds.empty()) sc.seeds.push_back(0);
            for (const auto& other : spec.scenarios) {
              if (other.name == sc.name) r.error("name", fmt::format("scenario \"{}\" is named twice", sc.name));
            }
            r.reject_unknown_keys();
            spec.scenarios.push_back(sc);
          });
  if (spec.scenarios.empty()) spec.scenarios.push_back({"none", "", {0}});
}

void read_training(Reader& in, JsonObjectReader& t, SweepSpec& spec) {
  spec.models = inputs_list(in, t, "models", "models");
  spec.clusters = inputs_list(in, t, "clusters", "clusters");
  const nlohmann::json* g = t.raw("gpus");
  if (g == nullptr) t.error("gpus", "missing", "a list of world sizes, e.g. [4096, 8192]");
  in.list(g, t.pointer_of("gpus"), "a list of world sizes", [&](const nlohmann::json& e, const std::string& p) {
    if (!e.is_number_integer() || e.get<std::int64_t>() < 1 || e.get<std::int64_t>() > (std::int64_t{1} << 24)) {
      in.error(p, fmt::format("{} is not a GPU count", describe_json_value(e)), "an integer from 1 to 16777216");
    } else {
      spec.gpus.push_back(e.get<std::int64_t>());
    }
  });
  if (const nlohmann::json* p = t.raw("profile")) spec.profile = in.input(*p, t.pointer_of("profile"), "profiles");
  if (auto fleet = t.string("fleet")) spec.fleet = in.local(*fleet);
  read_plans(in, t, spec);
  double plans = static_cast<double>(spec.plan_presets.size());
  for (const auto& grid : spec.grids) plans += static_cast<double>(grid.size());
  for (const auto& search : spec.searches) plans += static_cast<double>(search.top);
  refuse_beyond_limit(in, t.pointer(), "models x clusters x gpus x plans",
                      static_cast<double>(spec.models.size() * spec.clusters.size() * spec.gpus.size()) * plans);
  read_simulate(in, t, spec);
  read_scenarios(in, t, spec);
  t.reject_unknown_keys();
}

void read_serving_block(Reader& in, const nlohmann::json& value, const std::string& pointer, SweepSpec& spec) {
  JsonObjectReader r(in.diag, in.file, pointer, value);
  if (!r.is_object()) return;
  ServingAxes s;
  if (const nlohmann::json* m = r.raw("model")) s.model = in.input(*m, r.pointer_of("model"), "models");
  else r.error("model", "missing", "a model preset or config.json");
  if (const nlohmann::json* c = r.raw("cluster")) s.cluster = in.input(*c, r.pointer_of("cluster"), "clusters");
  else r.error("cluster", "missing", "a cluster preset or file");
  if (const nlohmann::json* p = r.raw("profile")) s.profile = in.input(*p, r.pointer_of("profile"), "profiles");
  for (auto [key, target, what] : {std::tuple{"deployments", &s.deployments, "deployment"},
                                   std::tuple{"workloads", &s.workloads, "workload"}}) {
    const nlohmann::json* v = r.raw(key);
    if (v == nullptr) r.error(key, "missing", fmt::format("a list of {} files", what));
    in.list(v, r.pointer_of(key), fmt::format("a list of {} files", what),
            [&, target = target, what = what](const nlohmann::json& e, const std::string& p) {
              target->push_back(in.file_input(e, p, what));
            });
  }
  const nlohmann::json* rates = r.raw("rates");
  if (rates == nullptr) r.error("rates", "missing", "a list of request rates per second");
  in.list(rates, r.pointer_of("rates"), "a list of request rates per second", [&](const nlohmann::json& e, const std::string& p) {
    if (!e.is_number() || !(e.get<double>() > 0)) {
      in.error(p, fmt::format("{} is not a rate", describe_json_value(e)), "a number of requests per second > 0");
    } else {
      s.rates_per_s.push_back(e.get<double>());
    }
  });
  refuse_beyond_limit(in, pointer, "deployments x workloads x rates",
                      static_cast<double>(s.deployments.size() * s.workloads.size()) * static_cast<double>(s.rates_per_s.size()));
  s.slo_ttft_s = r.number("slo_ttft_s", 0, 1e6).value_or(0);
  s.slo_tpot_s = r.number("slo_tpot_s", 0, 1e6).value_or(0);
  r.reject_unknown_keys();
  spec.serving.push_back(s);
}

std::string profile_of(const std::string& profile, const std::string& cluster_argument,
                       std::map<std::string, std::string>& cache) {
  if (!profile.empty()) return profile;
  auto [it, added] = cache.emplace(cluster_argument, "");
  if (added) {
    Diagnostics diag;
    it->second = profile_argument_for("", load_cluster(cluster_argument, diag));
  }
  return it->second;
}

// The key: the tier, the command, and the bytes of every file the command reads.
std::string task_key(const SweepTask& task) {
  static const std::map<std::string, std::string> kFileKinds = {
      {"--model", "models"},    {"--cluster", "clusters"},     {"--plan", "plans"},        {"--profile", "profiles"},
      {"--scenario", ""},       {"--deployment", ""},          {"--workload", ""},         {"--fleet", "fleets"}};
  ContentHash hash;
  hash.add(version_string()).add(task.tier);
  for (std::size_t i = 0; i < task.args.size(); ++i) {
    hash.add(task.args[i]);
    const auto kind = kFileKinds.find(task.args[i]);
    if (kind == kFileKinds.end() || i + 1 >= task.args.size()) continue;
    const std::string& value = task.args[i + 1];
    if (looks_like_inline_json(value) || value == "none") continue;
    std::error_code ec;
    std::string path = value;
    if (!kind->second.empty() && !fs::is_regular_file(value, ec)) path = resolve_input(value, kind->second, kind->first);
    if (fs::is_regular_file(path, ec)) hash.add(file_content_hash(path));
  }
  return hash.hex();
}

std::string profile_hash(const std::string& profile, std::map<std::string, std::string>& cache) {
  auto [it, added] = cache.emplace(profile, "");
  if (added) it->second = file_content_hash(resolve_input(profile, "profiles", "--profile"));
  return it->second;
}

std::vector<ordered_json> searched_plans(const SweepSpec& spec, const SweepSpec::Search& search, const std::string& model,
                                         const std::string& cluster, std::int64_t gpus, const std::string& profile) {
  std::vector<std::string> args = {"search", "--model", model, "--cluster", cluster, "--gpus", std::to_string(gpus),
                                   "--global-batch-size", std::to_string(search.global_batch_size), "--seq-length",
                                   std::to_string(search.seq_length), "--top", std::to_string(search.top),
                                   "--profile", profile, "--format", "json"};
  if (!spec.fleet.empty()) args.insert(args.end(), {"--fleet", spec.fleet});
  const CapturedCommand run = run_command_captured(args);
  if (run.exit_code != kExitOk) {
    throw UsageError(fmt::format("{}: the search for {} on {} x {} failed: {}", spec.file, model, gpus, cluster, run.err));
  }
  std::vector<ordered_json> plans;
  for (const auto& best : ordered_json::parse(run.out).at("best")) plans.push_back(best.at("plan"));
  return plans;
}

}  // namespace

SweepSpec read_sweep_spec(const std::string& path) {
  const JsonDocument doc = read_json_document(path, "sweep");
  Diagnostics diag;
  SweepSpec spec;
  spec.file = doc.file;
  Reader in{diag, doc.file, fs::path(path).parent_path()};
  JsonObjectReader root(diag, doc.file, "", doc.value);
  if (root.has("training")) {
    JsonObjectReader t = root.object("training", true);
    if (t.is_object()) read_training(in, t, spec);
  }
  if (const nlohmann::json* serving = root.raw("serving")) {
    if (serving->is_array()) {
      in.list(serving, "/serving", "a list of serving axes",
              [&](const nlohmann::json& e, const std::string& p) { read_serving_block(in, e, p, spec); });
    } else {
      read_serving_block(in, *serving, "/serving", spec);
    }
  }
  if (root.is_object() && !root.has("training") && !root.has("serving")) {
    in.error("", "names neither \"training\" nor \"serving\" axes", "docs/sweep.md describes the file");
  }
  root.reject_unknown_keys();
  diag.throw_if_errors();
  return spec;
}

std::size_t PlanGrid::size() const {
  std::size_t count = 1;
  for (const auto& [key, values] : axes) {
    count *= std::max<std::size_t>(values.size(), 1);
    if (count > kMaxTasks) return kMaxTasks + 1;  // no wrap-around: "more than the limit" is all it says
  }
  return count;
}

ordered_json PlanGrid::plan(std::size_t i) const {
  nlohmann::json plan = nlohmann::json::object();  // sorted keys
  for (auto a = axes.rbegin(); a != axes.rend(); ++a) {
    const nlohmann::json& v = a->second[i % a->second.size()];
    i /= a->second.size();
    if (v.is_object()) {
      for (const auto& [inner, x] : v.items()) plan[inner] = x;
    } else {
      plan[a->first] = v;
    }
  }
  return ordered_json::parse(plan.dump());
}

std::vector<SweepTask> first_tier_tasks(const SweepSpec& spec) {
  std::vector<SweepTask> tasks;
  std::map<std::string, std::string> profiles, hashes;
  for (const auto& model : spec.models) {
    for (const auto& cluster : spec.clusters) {
      const std::string profile = profile_of(spec.profile, cluster, profiles);
      for (const std::int64_t gpus : spec.gpus) {
        std::vector<std::pair<std::string, ordered_json>> plans;  // command argument, point value
        for (const auto& grid : spec.grids) {
          for (std::size_t i = 0; i < grid.size(); ++i) {
            ordered_json p = grid.plan(i);
            plans.emplace_back(p.dump(), std::move(p));
          }
        }
        for (const auto& p : spec.plan_presets) plans.emplace_back(p, p);
        for (const auto& search : spec.searches) {
          for (const auto& p : searched_plans(spec, search, model, cluster, gpus, profile)) plans.emplace_back(p.dump(), p);
        }
        for (const auto& [argument, value] : plans) {
          SweepTask t;
          t.tier = "estimate";
          t.point = {{"model", model}, {"cluster", cluster}, {"gpus", gpus}, {"plan", value}};
          t.args = {"estimate", "--model", model, "--cluster", cluster, "--gpus", std::to_string(gpus),
                    "--plan", argument, "--profile", profile, "--format", "json"};
          if (!spec.fleet.empty()) t.args.insert(t.args.end(), {"--fleet", spec.fleet});
          t.profile_hash = profile_hash(profile, hashes);
          tasks.push_back(std::move(t));
          if (tasks.size() > kMaxTasks) throw UsageError(fmt::format("{}: more than {} points", spec.file, kMaxTasks));
        }
      }
    }
  }
  for (const auto& s : spec.serving) {
    const std::string profile = profile_of(s.profile, s.cluster, profiles);
    for (const auto& deployment : s.deployments) {
      for (const auto& workload : s.workloads) {
        for (const double rate : s.rates_per_s) {
          SweepTask t;
          t.tier = "serve";
          t.point = {{"model", s.model}, {"cluster", s.cluster}, {"deployment", deployment}, {"workload", workload},
                     {"rate_per_s", rate}};
          t.args = {"serve", "--model", s.model, "--cluster", s.cluster, "--deployment", deployment, "--workload", workload,
                    "--rate", fmt::format("{}", rate), "--profile", profile, "--format", "json"};
          if (s.slo_ttft_s > 0) t.args.insert(t.args.end(), {"--slo-ttft", fmt::format("{}", s.slo_ttft_s)});
          if (s.slo_tpot_s > 0) t.args.insert(t.args.end(), {"--slo-tpot", fmt::format("{}", s.slo_tpot_s)});
          t.profile_hash = profile_hash(profile, hashes);
          tasks.push_back(std::move(t));
        }
      }
    }
  }
  for (auto& t : tasks) t.key = task_key(t);
  return tasks;
}

std::string tier_group(const SweepSpec& spec, const SweepTask& task) {
  ordered_json group = ordered_json::object();
  for (const auto& field : spec.simulate.per) {
    if (task.point.contains(field)) group[field] = task.point[field];
  }
  return group.dump();
}

std::vector<SweepTask> simulate_tasks(const SweepSpec& spec, const std::vector<SweepTask>& estimates,
                                      const std::vector<nlohmann::json>& rows) {
  // Per group, the candidates that ran and fit in memory, best first (ties: by key).
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::pair<double, std::size_t>>> groups;
  for (std::size_t i = 0; i < estimates.size(); ++i) {
    if (estimates[i].tier != "estimate") continue;
    const std::string group = tier_group(spec, estimates[i]);
    if (!groups.count(group)) order.push_back(group);
    auto& members = groups[group];
    const nlohmann::json& row = rows[i];
    if (row.is_null() || row.value("status", "") != "ok") continue;
    const nlohmann::json& result = row.at("result");
    if (!result.value("fits_in_memory", false) || !result.contains(spec.simulate.by)) continue;
    members.emplace_back(result.at(spec.simulate.by).get<double>(), i);
  }
  std::vector<SweepTask> tasks;
  for (const auto& group : order) {
    auto& members = groups[group];
    std::sort(members.begin(), members.end(), [&](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : estimates[a.second].key < estimates[b.second].key;
    });
    for (std::size_t rank = 0; rank < members.size() && rank < spec.simulate.best; ++rank) {
      const SweepTask& e = estimates[members[rank].second];
      for (const auto& scenario : spec.scenarios) {
        for (const std::uint64_t seed : scenario.seeds) {
          SweepTask t = e;
          t.tier = "simulate";
          t.args[0] = "simulate";
          if (!scenario.file.empty()) t.args.insert(t.args.end(), {"--scenario", scenario.file});
          if (seed != 0) t.args.insert(t.args.end(), {"--seed", std::to_string(seed)});
          t.point["scenario"] = scenario.name;
          if (seed != 0) t.point["seed"] = seed;
          t.point["estimate_rank"] = rank + 1;
          t.point["estimate_key"] = e.key;
          t.key = task_key(t);
          tasks.push_back(std::move(t));
        }
      }
    }
  }
  return tasks;
}

}  // namespace clustersim::cli
