#include "tools/sweep_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <map>
#include <memory>

#include "tools/cli_common.hpp"
#include "tools/sweep/mpi_worker_pool.hpp"
#include "tools/sweep/results_file.hpp"
#include "tools/sweep/rows_csv.hpp"
#include "tools/sweep/sweep_runner.hpp"

namespace clustersim::cli {

namespace {

struct MergeOptions {
  std::vector<std::string> inputs;
  std::string output, csv;
};

// "--shard I/N" with 0 <= I < N.
void parse_shard(const std::string& text, SweepOptions& o) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument(text);
    std::size_t used_i = 0, used_n = 0;
    o.shard = std::stoi(text.substr(0, slash), &used_i);
    o.shards = std::stoi(text.substr(slash + 1), &used_n);
    if (used_i != slash || used_n != text.size() - slash - 1 || o.shards < 1 || o.shard < 0 || o.shard >= o.shards) {
      throw std::invalid_argument(text);
    }
  } catch (const std::exception&) {
    throw UsageError(fmt::format("--shard {}: give I/N with 0 <= I < N (e.g. --shard 0/4 ... --shard 3/4)", text));
  }
}

void run_sweep_command(SweepOptions o, const std::string& shard) {
  if (!shard.empty()) parse_shard(shard, o);
  if (mpi_world_size_from_environment()) {
    std::unique_ptr<WorkerPool> pool = join_mpi_job();
    if (!pool) return;  // a worker rank: rank 0 writes the results
    run_sweep(o, *pool);
    return;
  }
  std::unique_ptr<WorkerPool> pool = make_local_worker_pool(o.jobs);
  run_sweep(o, *pool);
}

// Rows of several files (shards, or runs of one sweep), each key once (the first complete,
// non-failed row), in the order of the files and their lines.
void run_merge(const MergeOptions& o) {
  std::vector<ResultRow> merged, failed;
  std::map<std::string, bool> seen;  // key -> has a complete row
  std::size_t read = 0;
  for (const auto& path : o.inputs) {
    long cut_at = -1;
    for (auto& row : read_result_rows(path, &cut_at)) {
      ++read;
      const std::string key = row.value["key"];
      const bool ok = row.value.value("status", "") != "failed";
      if (ok && !seen[key]) {
        seen[key] = true;
        merged.push_back(std::move(row));
      } else if (!ok && !seen.count(key)) {
        seen[key] = false;
        failed.push_back(std::move(row));
      }
    }
    if (cut_at >= 0) std::cerr << fmt::format("sweep merge: {}: the last line was cut short and is left out\n", path);
  }
  for (auto& row : failed) {
    if (!seen[row.value["key"].get<std::string>()]) merged.push_back(std::move(row));
  }
  std::string text;
  for (const auto& row : merged) text += row.line + '\n';
  write_output(o.output, text);
  if (!o.csv.empty()) write_rows_csv(o.csv, merged);
  std::cerr << fmt::format("sweep merge: {} rows from {} file(s) ({} read)\n", merged.size(), o.inputs.size(), read);
}

}  // namespace

void register_sweep_command(CLI::App& app) {
  auto o = std::make_shared<SweepOptions>();
  auto shard = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("sweep", "Many estimates and simulations from one sweep file: JSON Lines rows, resumable, -j N or mpirun");
  cmd->footer(
      "Examples:\n"
      "  clustersim sweep examples/sweep-small.json -o small.jsonl --csv small.csv\n"
      "  clustersim sweep examples/sweep-405b.json -o 405b.jsonl -j 2\n"
      "  mpirun -n 3 clustersim sweep examples/sweep-405b.json -o 405b.jsonl\n"
      "  clustersim sweep examples/sweep-small.json -o shard0.jsonl --shard 0/2\n"
      "  clustersim sweep examples/sweep-small.json -o shard1.jsonl --shard 1/2\n"
      "  clustersim sweep merge shard0.jsonl shard1.jsonl -o small.jsonl\n"
      "Run again after a stop: rows already in the file are kept, the rest is done. Format: docs/sweep.md.");
  cmd->add_option("spec", o->spec, "Sweep file (JSON): axes and the tier rule")->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "Results, JSON Lines (appended to; a rerun resumes)")->check(writable_file());
  cmd->add_option("--csv", o->csv, "Also write the rows as one CSV table")->check(writable_file());
  cmd->add_option("-j,--jobs", o->jobs, "Worker processes on this machine (under mpirun: the ranks other than 0)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--shard", *shard, "I/N: do only the groups with index % N == I (job arrays); merge the files after");
  cmd->require_subcommand(0, 1);

  auto m = std::make_shared<MergeOptions>();
  CLI::App* merge = cmd->add_subcommand("merge", "Merge the results of shards or runs of a sweep, each row once");
  merge->footer(
      "Example:\n"
      "  clustersim sweep merge shard0.jsonl shard1.jsonl -o all.jsonl --csv all.csv");
  merge->add_option("inputs", m->inputs, "Results files (JSON Lines)")->required()->check(CLI::ExistingFile);
  merge->add_option("-o,--output", m->output, "Merged file (default: stdout)")->check(writable_file());
  merge->add_option("--csv", m->csv, "Also write the rows as one CSV table")->check(writable_file());
  merge->callback([m] { run_merge(*m); });

  cmd->callback([cmd, o, shard] {
    if (cmd->got_subcommand("merge")) return;
    if (o->spec.empty()) throw UsageError("give a sweep file: clustersim sweep SPEC.json -o RESULTS.jsonl");
    if (o->output.empty() || o->output == "-") throw UsageError("give -o RESULTS.jsonl (the file a rerun resumes from)");
    run_sweep_command(*o, *shard);
  });
}

}  // namespace clustersim::cli
