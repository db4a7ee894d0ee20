#include "kernels/collective_reference.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>

namespace clustersim::kernels {

const char* to_string(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduce: return "all_reduce";
    case CollectiveOp::kAllGather: return "all_gather";
    case CollectiveOp::kReduceScatter: return "reduce_scatter";
    case CollectiveOp::kAllToAll: return "all_to_all";
    case CollectiveOp::kSendRecv: return "send_recv";
  }
  return "unknown";
}

std::vector<std::vector<float>> collective_reference(CollectiveOp op,
                                                     const std::vector<std::vector<float>>& in) {
  const std::size_t ranks = in.size();
  if (ranks == 0) throw std::invalid_argument("collective reference: no ranks");
  const std::size_t n = in[0].size();
  for (const auto& buffer : in) {
    if (buffer.size() != n) throw std::invalid_argument("collective reference: ranks' sizes differ");
  }
  const bool blocked = op == CollectiveOp::kReduceScatter || op == CollectiveOp::kAllToAll;
  if (blocked && n % ranks != 0) {
    throw std::invalid_argument(std::string("collective reference: ") + to_string(op) +
                                " needs a size divisible by the rank count");
  }
  std::vector<std::vector<float>> out(ranks);
  const std::size_t block = n / ranks;
  for (std::size_t r = 0; r < ranks; ++r) {
    switch (op) {
      case CollectiveOp::kAllReduce:
      case CollectiveOp::kReduceScatter: {
        const std::size_t begin = op == CollectiveOp::kAllReduce ? 0 : r * block;
        const std::size_t count = op == CollectiveOp::kAllReduce ? n : block;
        out[r].resize(count);
        for (std::size_t i = 0; i < count; ++i) {
          double sum = 0;
          for (std::size_t src = 0; src < ranks; ++src) sum += in[src][begin + i];
          out[r][i] = static_cast<float>(sum);
        }
        break;
      }
      case CollectiveOp::kAllGather:
        for (std::size_t src = 0; src < ranks; ++src) {
          out[r].insert(out[r].end(), in[src].begin(), in[src].end());
        }
        break;
      case CollectiveOp::kAllToAll:
        for (std::size_t src = 0; src < ranks; ++src) {
          const auto first = in[src].begin() + static_cast<std::ptrdiff_t>(r * block);
          out[r].insert(out[r].end(), first, first + static_cast<std::ptrdiff_t>(block));
        }
        break;
      case CollectiveOp::kSendRecv:
        out[r] = in[(r + ranks - 1) % ranks];
        break;
    }
  }
  return out;
}

}  // namespace clustersim::kernels
