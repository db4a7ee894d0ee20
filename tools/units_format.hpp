#pragma once
// Human-readable quantities for tables (JSON output keeps raw SI numbers).
#include <cstdint>
#include <string>

namespace clustersim::cli {

std::string human_count(std::int64_t n);   // 405.85 B, 12.9 M
std::string human_bytes(double bytes);     // 74.51 GiB
std::string human_flops(double flops);     // 2.43 TFLOP
std::int64_t round_bytes(double bytes);

}  // namespace clustersim::cli
