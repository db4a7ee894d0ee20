#pragma once
// One point of a sweep at one tier, and what a worker makes of it: the clustersim command line
// that answers it, run in the worker's process (tools/command_line.hpp), and the JSON Lines row
// that holds the answer. The row is the command's own --format json output plus the point's
// inputs, so a sweep row, `clustersim <command> --format json` and the Python module agree.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clustersim::cli {

struct SweepTask {
  std::string tier;               // "estimate", "simulate" or "serve"
  nlohmann::ordered_json point;   // the axes' values: model, cluster, gpus, plan, scenario, seed, rate ...
  std::vector<std::string> args;  // the clustersim command line (without the program name)
  std::string key;                // hash of the resolved inputs (tier, command, every file it reads, version)
  std::string profile_hash;       // hash of the profile's bytes
};

// What crosses to a worker and back: one line of compact JSON each.
std::string task_to_line(const SweepTask& task);
SweepTask task_from_line(const std::string& line);

// Runs the task's command in this process and returns its row (compact JSON, no newline):
// {"key", "tier", "status": "ok" | "invalid" | "failed", "point", "command", "result" (the command's
// JSON) or "errors", "warnings", "version", "profile_hash"}.
std::string run_task(const SweepTask& task);

// run_task on a task line as it crossed to a worker; an exception becomes a "failed" row.
std::string run_task_line(const std::string& task_line);

// The row of a task whose worker died running it (status "failed"; a resumed sweep runs it again).
std::string failed_row(const SweepTask& task, const std::string& why);

// The command line as a shell would take it: "clustersim estimate --model ... --plan '{...}'".
std::string shell_command(const std::vector<std::string>& args);

}  // namespace clustersim::cli
