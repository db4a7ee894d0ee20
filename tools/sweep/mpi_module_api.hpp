#pragma once
// The table of libclustersim_mpi.so (mpi_module.cpp), the only code that includes MPI headers.
// Like the SimGrid adapter, it is a module opened at run time (mpi_worker_pool.cpp), so a
// clustersim built with MPI starts and runs without it unless it runs under mpirun, and one
// built without MPI says so.
#include <cstddef>

namespace clustersim::cli {

struct MpiModuleApi {
  void (*init)(int* rank, int* size);
  // Sends `size` bytes to `rank` (a blocking standard send).
  void (*send)(int rank, const char* data, std::size_t size);
  // Blocks for the next message from `from` (-1: any rank); returns the sender. The bytes stay
  // valid until the next call.
  int (*receive)(int from, const char** data, std::size_t* size);
  void (*finalize)();
};

inline constexpr const char* kMpiModuleEntry = "clustersim_mpi_module";

}  // namespace clustersim::cli
