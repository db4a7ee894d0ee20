#pragma once
// The sweep under mpirun: rank 0 is the coordinator and writes the results; every other rank is
// a worker. Open MPI 4 ends the whole job when a rank dies, so a dead rank's points are not
// reissued within the run: the rerun (resumable) does them.
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
