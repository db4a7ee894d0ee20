// CPU backend, memory suite: a copy of half the bytes into the other half (read plus written,
// the records' and the lowering's convention) on every rank thread at once, each with its own
// buffers, timed between barriers of all of them: what a replay rank's memory-bound
// operations (workload_replay.cpp: memcpy of half their bytes) see with its peers running.
#include <cstring>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

MeasurementRecord measure_cpu_memory(const MemoryCase& c, const BackendOptions& o) {
  const int ranks = cpu_rank_threads();
  const std::size_t floats = static_cast<std::size_t>(c.bytes) / 2 / sizeof(float);
  struct Buffers {
    std::vector<float> src, dst;
  };
  std::vector<Buffers> buffers(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    Buffers& b = buffers[static_cast<std::size_t>(r)];
    b.src = cpu_operand(floats, static_cast<std::uint64_t>(r) + 7);
    b.dst.assign(floats, 0.0f);
  }
  MeasurementRecord record;
  record.samples_s = time_ranks(ranks, o.warmup_iterations, o.iterations, [&](int rank, int) {
    Buffers& b = buffers[static_cast<std::size_t>(rank)];
    std::memcpy(b.dst.data(), b.src.data(), floats * sizeof(float));
  });
  MemoryRecord m;
  m.kernel = c.kernel;
  m.bytes = static_cast<double>(2 * floats * sizeof(float));
  record.shape = m;
  return record;
}

}  // namespace clustersim::calibrate
