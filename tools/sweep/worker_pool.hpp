#pragma once
// Where a sweep's tasks run: worker processes that each take one task line at a time and answer
// with one row line. Two kinds: forked local workers (-j N) and MPI ranks (mpi_worker_pool).
// The coordinator (sweep_runner) hands out tasks, writes rows and reissues the task of a worker
// that died; it does not know which kind it drives.
#include <memory>
#include <string>

namespace clustersim::cli {

class WorkerPool {
 public:
  virtual ~WorkerPool() = default;
  virtual int workers() const = 0;
  virtual void send(int worker, const std::string& task_line) = 0;
  struct Reply {
    int worker = -1;
    bool died = false;  // the worker ended without answering; its task is lost
    std::string why;    // how it died
    std::string row_line;
  };
  // Blocks until a busy worker answers or dies.
  virtual Reply receive() = 0;
  // Replaces a worker that died; false when this kind of pool cannot (the task then goes to others).
  virtual bool restart(int worker) = 0;
  // Tells every worker to stop and waits for them.
  virtual void shutdown() = 0;
};

// `count` forked copies of this process, each running tasks (sweep_task.hpp) until told to stop.
std::unique_ptr<WorkerPool> make_local_worker_pool(int count);

// The loop of a worker: reads task lines from `in_fd`, writes row lines to `out_fd`, until end of
// input. Shared by local workers and MPI ranks.
void serve_tasks_on_fds(int in_fd, int out_fd);

}  // namespace clustersim::cli
