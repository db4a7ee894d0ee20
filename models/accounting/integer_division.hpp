#pragma once
// Integer division rounded up, for counts of tiles, nodes, blocks and batches.
#include <cstdint>

namespace clustersim {

// ceil(a / b) for a >= 0 and b > 0.
constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace clustersim
