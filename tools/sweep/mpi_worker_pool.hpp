#pragma once
// The sweep under mpirun: rank 0 is the coordinator and writes the results; every other rank is
// a worker and runs each point in a child process of its own, so a point whose process dies
// (a crash, an out-of-memory kill) is handed to another rank. Open MPI 4 ends the whole job when
// a rank itself dies, so that rank's point is not reissued within the job: the rerun
// (resumable) does it.
#include <memory>
#include <optional>

#include "tools/sweep/worker_pool.hpp"

namespace clustersim::cli {

// The world size when this process was started by mpirun/srun with more than one rank
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE), else nothing.
std::optional<int> mpi_world_size_from_environment();

// Loads libclustersim_mpi.so and joins the MPI job. On rank 0, returns the pool of the other
// ranks; on every other rank, serves tasks until rank 0 says stop, then returns null.
std::unique_ptr<WorkerPool> join_mpi_job();

}  // namespace clustersim::cli
