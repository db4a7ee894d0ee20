// libclustersim_mpi.so: the sweep's messages over MPI (tools/sweep/mpi_module_api.hpp). Built
// only when CMake finds MPI; nothing else includes mpi.h.
#include <mpi.h>

#include <vector>

#include "tools/sweep/mpi_module_api.hpp"

namespace clustersim::cli {
namespace {

constexpr int kTag = 19;
std::vector<char> received;

void init(int* rank, int* size) {
  int ready = 0;
  MPI_Initialized(&ready);
  if (!ready) MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
}

void send(int rank, const char* data, std::size_t size) {
  MPI_Send(data, static_cast<int>(size), MPI_CHAR, rank, kTag, MPI_COMM_WORLD);
}

int receive(int from, const char** data, std::size_t* size) {
  MPI_Status status;
  MPI_Probe(from < 0 ? MPI_ANY_SOURCE : from, kTag, MPI_COMM_WORLD, &status);
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  received.resize(static_cast<std::size_t>(count) + 1);
  MPI_Recv(received.data(), count, MPI_CHAR, status.MPI_SOURCE, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  *data = received.data();
  *size = static_cast<std::size_t>(count);
  return status.MPI_SOURCE;
}

void finalize() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}

const MpiModuleApi kApi{init, send, receive, finalize};

}  // namespace
}  // namespace clustersim::cli

extern "C" const clustersim::cli::MpiModuleApi* clustersim_mpi_module() { return &clustersim::cli::kApi; }
