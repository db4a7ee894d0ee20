#pragma once
// A stable 64-bit content hash (FNV-1a) as 16 hex digits: the key of a sweep row and the hash of
// the profile a result was priced with. Not cryptographic; it only has to tell inputs apart.
#include <string>
#include <string_view>

namespace clustersim::cli {

class ContentHash {
 public:
  ContentHash& add(std::string_view bytes);
  std::string hex() const;

 private:
  unsigned long long state_ = 14695981039346656037ull;
};

// The hash of a file's bytes; throws UsageError when it cannot be read.
std::string file_content_hash(const std::string& path);

}  // namespace clustersim::cli
