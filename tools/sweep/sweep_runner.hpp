#pragma once
// The coordinator of a sweep: expands the sweep file into tasks, skips those whose rows are
// already in the results file, hands the rest to a WorkerPool, writes each row as it arrives,
// reissues the task of a worker that died, then picks the points to simulate by the tier rule
// and runs them the same way. Progress (points done, rate, ETA) goes to stderr.
#include <memory>
#include <string>

#include "tools/sweep/sweep_spec.hpp"
#include "tools/sweep/worker_pool.hpp"

namespace clustersim::cli {

struct SweepOptions {
  std::string spec, output, csv;
  int jobs = 1;
  int shard = 0, shards = 1;  // --shard I/N: this run does the groups with index % N == I
};

struct SweepSummary {
  std::size_t estimated = 0, simulated = 0, served = 0;  // rows of this sweep in the file
  std::size_t run = 0, skipped = 0, failed = 0;            // tasks run now, found done, failed now
};

// Runs the sweep on `pool` (its workers already started).
SweepSummary run_sweep(const SweepOptions& options, WorkerPool& pool);

}  // namespace clustersim::cli
