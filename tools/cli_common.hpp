#pragma once
// Helpers shared by subcommands: loading inputs named on the command line, printing warnings.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "models/accounting/memory_estimate.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/input_error.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/cost/profile.hpp"
#include "models/inputs/train_plan.hpp"
#include "models/planning/training_estimate.hpp"

namespace clustersim::cli {

// Thrown for bad command-line usage (exit code 2, like bad input).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A result that is not an error but must set the exit code (validate: a case out of tolerance).
struct ExitWithCode {
  int code = 1;
};

ModelSpec load_model(const std::string& argument, Diagnostics& diag);
ClusterSpec load_cluster(const std::string& argument, Diagnostics& diag);
// --fleet: a fleet preset, file, inline JSON or "none" replaces the cluster's fleet; empty
// keeps it.
void apply_fleet_option(const std::string& fleet, ClusterSpec& cluster);
// Adds --fleet to a command.
void add_fleet_option(CLI::App& cmd, std::string& fleet);
// --ablate variability,data_imbalance,fixed_costs,shared_nics,nccl_tuner,ecmp,interference (or all): the mechanisms turned off.
void add_ablate_option(CLI::App& cmd, std::vector<std::string>& ablate);
Mechanisms parse_ablate(const std::vector<std::string>& ablate);
// From --plan (file, preset or inline JSON) or --from-megatron-args.
TrainPlan load_plan(const std::string& plan_argument, const std::string& megatron_args,
                    Diagnostics& diag);

// A profile file or shipped profile name; empty: the shipped profile named like the cluster
// preset's GPU (the part of the preset name before '-': "h100-ndr" -> "h100").
struct LoadedProfile {
  Profile profile;
  std::string file;  // how messages name it
};
LoadedProfile load_profile_for(const std::string& argument, const ClusterSpec& cluster);
// The profile argument load_profile_for would resolve: `argument`, or the cluster's shipped one.
std::string profile_argument_for(const std::string& argument, const ClusterSpec& cluster);

// Writes `text` to `path` atomically (temporary file, then rename), or to stdout when `path` is
// empty or "-".
void write_output(const std::string& path, const std::string& text);

// A plan whose peak stage does not fit in HBM is a result, not an error, but never a silent one:
// a warning naming the plan's file, the peak and the HBM (every figure assumes it would fit).
void warn_if_not_fitting(Diagnostics& diag, const std::string& plan_file, const MemoryEstimate& memory,
                         const ClusterSpec& cluster);

// Prints collected warnings to stderr as "warning: file:/pointer: message (hint)".
void print_warnings(const Diagnostics& diag);

// Validators for options, checked while the command line is parsed (before any work; exit 2).
// An output file (-o, --trace, --perfetto): "-" or a path whose directory exists and is
// writable and which is not itself a directory.
CLI::Validator writable_file();
// A number > 0 (finite); the message names `unit` ("requests per second") instead of a range.
CLI::Validator positive_number(const std::string& unit);

enum class Format { kTable, kJson };
void add_format_option(CLI::App& app, Format& format);

}  // namespace clustersim::cli
