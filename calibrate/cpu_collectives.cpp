// CPU backend, collectives suite: ring collectives between threads (thread_communicator.hpp),
// buffers sized by nccl-tests' conventions.
#include <stdexcept>

#include "calibrate/cpu_backend.hpp"
#include "calibrate/thread_communicator.hpp"

namespace clustersim::calibrate {

MeasurementRecord measure_cpu_collective(const CollectiveCase& c, const BackendOptions& o) {
  using kernels::CollectiveOp;
  const auto ranks = static_cast<std::size_t>(c.ranks);
  const auto elements = static_cast<std::size_t>(c.size_bytes) / sizeof(float);
  if (elements == 0 || elements % ranks != 0) {
    throw std::invalid_argument("CPU collective: size must be a positive multiple of 4 x ranks bytes");
  }
  // Per rank: input and output element counts for nccl-tests' "size".
  std::size_t in_count = elements;
  std::size_t out_count = elements;
  switch (c.op) {
    case CollectiveOp::kAllGather: in_count = elements / ranks; break;
    case CollectiveOp::kReduceScatter: out_count = elements / ranks; break;
    case CollectiveOp::kAllReduce:
    case CollectiveOp::kAllToAll:
    case CollectiveOp::kSendRecv: break;
  }
  if (c.op == CollectiveOp::kSendRecv) {
    throw std::invalid_argument("CPU collective: send_recv is not in the CPU suite");
  }
  std::vector<std::vector<float>> in(ranks), out(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    in[r] = cpu_operand(in_count, 10 + r);
    out[r].assign(out_count, 0.0f);
  }
  ThreadCommunicator comm(c.ranks);
  MeasurementRecord record;
  record.samples_s = time_ranks(c.ranks, o.warmup_iterations, o.iterations, [&](int rank, int) {
    const auto r = static_cast<std::size_t>(rank);
    switch (c.op) {
      case CollectiveOp::kAllReduce: comm.all_reduce(rank, in[r].data(), out[r].data(), elements); break;
      case CollectiveOp::kAllGather: comm.all_gather(rank, in[r].data(), out[r].data(), in_count); break;
      case CollectiveOp::kReduceScatter:
        comm.reduce_scatter(rank, in[r].data(), out[r].data(), out_count);
        break;
      case CollectiveOp::kAllToAll:
        comm.all_to_all(rank, in[r].data(), out[r].data(), elements / ranks);
        break;
      case CollectiveOp::kSendRecv: break;
    }
  });
  CollectiveRecord coll;
  coll.kind = collective_kind_from_string(kernels::to_string(c.op)).value();
  coll.ranks = c.ranks;
  coll.nodes = 1;
  coll.algorithm = c.algorithm;
  coll.protocol = c.protocol;
  coll.size_bytes = static_cast<double>(c.size_bytes);
  coll.dtype = c.dtype;
  coll.in_place = false;
  record.shape = coll;
  return record;
}

}  // namespace clustersim::calibrate
