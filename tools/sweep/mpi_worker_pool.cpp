#include "tools/sweep/mpi_worker_pool.hpp"

#include <cstdlib>
#include <string>

#include "sim/platform/child_process.hpp"
#include "sim/platform/module_loader.hpp"
#include "tools/cli_common.hpp"
#include "tools/sweep/mpi_module_api.hpp"
#include "tools/sweep/sweep_task.hpp"

namespace clustersim::cli {

namespace {

#ifdef CLUSTERSIM_MPI_MODULE_NAME
const MpiModuleApi& load_module() {
  try {
    using Entry = const MpiModuleApi* (*)();
    // Global: Open MPI's own plug-ins resolve MPI symbols from the process.
    return *reinterpret_cast<Entry>(
        sim::open_module_entry(CLUSTERSIM_MPI_MODULE_NAME, CLUSTERSIM_MPI_MODULE_PATH, kMpiModuleEntry, true))();
  } catch (const std::runtime_error& e) {
    throw UsageError(e.what());
  }
}
#else
const MpiModuleApi& load_module() {
  throw UsageError("this clustersim was built without MPI (install libopenmpi-dev, as scripts/setup.sh does, and "
                   "rebuild); without mpirun, -j N runs worker processes on this machine");
}
#endif

constexpr int kCoordinator = 0;
// A worker's answer when the process of its point died: this prefix, then how.
constexpr char kPointDied[] = "\x01died ";

class MpiWorkerPool final : public WorkerPool {
 public:
  MpiWorkerPool(const MpiModuleApi& api, int size) : api_(api), size_(size) {}
  ~MpiWorkerPool() override { shutdown(); }
  int workers() const override { return size_ - 1; }
  void send(int worker, const std::string& task_line) override { api_.send(worker + 1, task_line.data(), task_line.size()); }
  Reply receive() override {
    const char* data = nullptr;
    std::size_t size = 0;
    Reply reply;
    reply.worker = api_.receive(-1, &data, &size) - 1;
    reply.row_line.assign(data, size);
    if (reply.row_line.rfind(kPointDied, 0) == 0) {
      reply.died = true;
      reply.why = "rank " + std::to_string(reply.worker + 1) + ": " + reply.row_line.substr(sizeof kPointDied - 1);
      reply.row_line.clear();
    }
    return reply;
  }
  // The rank lives on (only its point's process died).
  bool restart(int) override { return true; }
  void shutdown() override {
    if (stopped_) return;
    stopped_ = true;
    for (int rank = 1; rank < size_; ++rank) api_.send(rank, "", 0);  // an empty task: stop
    api_.finalize();
  }

 private:
  const MpiModuleApi& api_;
  int size_;
  bool stopped_ = false;
};

}  // namespace

std::optional<int> mpi_world_size_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* value = std::getenv(name)) {
      const int size = std::atoi(value);
      if (size > 1) return size;
    }
  }
  return std::nullopt;
}

std::unique_ptr<WorkerPool> join_mpi_job() {
  const MpiModuleApi& api = load_module();
  int rank = 0, size = 1;
  api.init(&rank, &size);
  if (rank == kCoordinator) return std::make_unique<MpiWorkerPool>(api, size);
  for (;;) {
    const char* data = nullptr;
    std::size_t bytes = 0;
    api.receive(kCoordinator, &data, &bytes);
    if (bytes == 0) break;
    const std::string line(data, bytes);
    std::string row;
    try {
      // Each point in a process of its own: a point that crashes or is killed (out of memory)
      // takes only that process, and rank 0 hands the point to another rank.
      row = sim::run_in_child_process([&] { return run_task_line(line); });
    } catch (const sim::ChildProcessError& e) {
      row = std::string(kPointDied) + "the process of its point died: " + e.what();
    }
    api.send(kCoordinator, row.data(), row.size());
  }
  api.finalize();
  return nullptr;
}

}  // namespace clustersim::cli
