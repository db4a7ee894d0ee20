#include "tools/cli_common.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <fstream>
#include <filesystem>
#include <map>

#include "models/inputs/preset_path.hpp"
#include "models/cost/profile_json.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

namespace {

// The preset name when the argument names one, for display.
std::string preset_name(const std::string& argument, const std::string& resolved) {
  return argument == resolved ? std::string() : argument;
}

}  // namespace

// Presets are shown by their place in the repository, so output does not depend on where the
// checkout lives.
ModelSpec load_model(const std::string& argument, Diagnostics& diag) {
  std::string path = resolve_input(argument, "models", "--model");
  ModelSpec model = load_model_spec(path, preset_name(argument, path), diag);
  if (argument != path) model.source = "configs/models/" + argument + ".json";
  return model;
}

ClusterSpec load_cluster(const std::string& argument, Diagnostics& diag) {
  std::string path = resolve_input(argument, "clusters", "--cluster");
  ClusterSpec cluster = load_cluster_spec(path, preset_name(argument, path), diag);
  if (argument != path) cluster.source = "configs/clusters/" + argument + ".json";
  return cluster;
}

void apply_fleet_option(const std::string& fleet, ClusterSpec& cluster) {
  if (fleet.empty()) return;
  Diagnostics diag;
  cluster.fleet = load_fleet_spec(fleet, "--fleet", diag);
}

void add_fleet_option(CLI::App& cmd, std::string& fleet) {
  cmd.add_option("--fleet", fleet,
                 "Fleet variability and step overheads: a preset in configs/fleets/, a file, or none "
                 "(default: the cluster's \"fleet\")");
}

void add_ablate_option(CLI::App& cmd, std::vector<std::string>& ablate) {
  std::vector<std::string> names;
  for (const MechanismName& m : kMechanismNames) names.emplace_back(m.name);
  std::string listed;
  for (const std::string& n : names) listed += n + ", ";
  names.emplace_back("all");
  cmd.add_option("--ablate", ablate, "Mechanisms to turn off, comma-separated: " + listed + "or all")
      ->delimiter(',')
      ->check(CLI::IsMember(names));
}

Mechanisms parse_ablate(const std::vector<std::string>& ablate) {
  Mechanisms m;
  for (const auto& name : ablate) {
    for (const MechanismName& n : kMechanismNames) {
      if (name == "all" || name == n.name) m.*n.on = false;
    }
  }
  return m;
}

TrainPlan load_plan(const std::string& plan_argument, const std::string& megatron_args,
                    Diagnostics& diag) {
  if (!plan_argument.empty() && !megatron_args.empty()) {
    throw UsageError("give --plan or --from-megatron-args, not both");
  }
  if (!megatron_args.empty()) return train_plan_from_megatron_args(megatron_args, diag);
  std::string path = resolve_input(plan_argument, "plans", "--plan");
  TrainPlan plan = load_train_plan(path, diag);
  if (plan_argument != path) plan.source = "configs/plans/" + plan_argument + ".json";
  return plan;
}

std::string profile_argument_for(const std::string& argument, const ClusterSpec& cluster) {
  std::string name = argument;
  if (name.empty()) {
    name = cluster.name.substr(0, cluster.name.find('-'));
    auto presets = preset_names("profiles");
    if (std::find(presets.begin(), presets.end(), name) == presets.end()) {
      throw UsageError(fmt::format("no shipped profile for cluster \"{}\"; give --profile (shipped: {})",
                                   cluster.name, fmt::join(presets, ", ")));
    }
  }
  return name;
}

LoadedProfile load_profile_for(const std::string& argument, const ClusterSpec& cluster) {
  const std::string name = profile_argument_for(argument, cluster);
  std::string path = resolve_input(name, "profiles", "--profile");
  LoadedProfile loaded{load_profile(path), path};
  if (name != path) loaded.file = "configs/profiles/" + name + ".json";
  return loaded;
}

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return;
  }
  std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary);
    if (!out) throw UsageError(fmt::format("cannot write {}", path));
    out << text;
    if (!out.flush()) throw UsageError(fmt::format("cannot write {}", path));
  }
  std::filesystem::rename(temporary, path);
}

void warn_if_not_fitting(Diagnostics& diag, const std::string& plan_file, const MemoryEstimate& memory,
                         const ClusterSpec& cluster) {
  const double peak = memory.peak().bytes.total();
  const double hbm = static_cast<double>(cluster.gpu.hbm_bytes);
  if (peak <= hbm) return;
  diag.warn(plan_file, "",
            fmt::format("the plan does not fit in GPU memory: {} per GPU at pipeline stage {} (peak) of {} HBM "
                        "({}); every figure assumes it would (\"fits_in_memory\": false)",
                        human_bytes(peak), memory.peak_stage, human_bytes(hbm), cluster.gpu.name),
            "more tensor/pipeline parallelism, recomputation or a distributed optimizer lower it; "
            "--require-fit makes estimate and simulate exit 3 instead");
}

void print_warnings(const Diagnostics& diag) {
  for (const auto& w : diag.warnings()) std::cerr << "warning: " << w.to_string() << '\n';
}

CLI::Validator writable_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        namespace fs = std::filesystem;
        if (path.empty() || path == "-") return {};
        std::error_code ec;
        if (fs::is_directory(path, ec)) return fmt::format("{} is a directory; give a file name", path);
        const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
        if (!fs::exists(parent, ec)) return fmt::format("cannot write {}: directory {} does not exist", path, parent.string());
        if (!fs::is_directory(parent, ec)) return fmt::format("cannot write {}: {} is not a directory", path, parent.string());
        if (access(parent.c_str(), W_OK) != 0) {
          return fmt::format("cannot write {}: directory {} is not writable ({})", path, parent.string(), std::strerror(errno));
        }
        if (fs::exists(path, ec) && access(path.c_str(), W_OK) != 0) {
          return fmt::format("cannot write {}: {}", path, std::strerror(errno));
        }
        return {};
      },
      "FILE (writable)");
}

CLI::Validator positive_number(const std::string& unit) {
  return CLI::Validator(
      [unit](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v) || v <= 0) {
          return fmt::format("{} is not a positive number of {}", text, unit);
        }
        return {};
      },
      "POSITIVE");
}

void add_format_option(CLI::App& app, Format& format) {
  static const std::map<std::string, Format> kFormats{{"table", Format::kTable},
                                                      {"json", Format::kJson}};
  app.add_option("--format", format, "Output format: table or json")
      ->transform(CLI::CheckedTransformer(kFormats, CLI::ignore_case))
      ->default_str("table");
}

}  // namespace clustersim::cli
