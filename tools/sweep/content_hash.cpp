#include "tools/sweep/content_hash.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "tools/cli_common.hpp"

namespace clustersim::cli {

ContentHash& ContentHash::add(std::string_view bytes) {
  for (unsigned char c : bytes) {
    state_ ^= c;
    state_ *= 1099511628211ull;
  }
  // A separator, so that ("ab", "c") and ("a", "bc") differ.
  state_ ^= 0xffu;
  state_ *= 1099511628211ull;
  return *this;
}

std::string ContentHash::hex() const { return fmt::format("{:016x}", state_); }

std::string file_content_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read {}", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return ContentHash().add(bytes.str()).hex();
}

}  // namespace clustersim::cli
