#include "tools/units_format.hpp"

#include <fmt/format.h>

#include <cmath>

namespace clustersim::cli {

namespace {

std::string scaled(double value, const char* const* units, int count, double step,
                   const char* suffix) {
  int i = 0;
  while (i + 1 < count && std::fabs(value) >= step) {
    value /= step;
    ++i;
  }
  std::string unit = std::string(units[i]) + suffix;
  return unit.empty() ? fmt::format("{:.2f}", value) : fmt::format("{:.2f} {}", value, unit);
}

}  // namespace

std::string human_count(std::int64_t n) {
  static const char* const kUnits[] = {"", "K", "M", "B", "T"};
  return scaled(static_cast<double>(n), kUnits, 5, 1000.0, "");
}

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  return scaled(bytes, kUnits, 5, 1024.0, "");
}

std::string human_flops(double flops) {
  static const char* const kUnits[] = {"", "K", "M", "G", "T", "P"};
  return scaled(flops, kUnits, 6, 1000.0, "FLOP");
}

std::int64_t round_bytes(double bytes) { return static_cast<std::int64_t>(std::llround(bytes)); }

}  // namespace clustersim::cli
