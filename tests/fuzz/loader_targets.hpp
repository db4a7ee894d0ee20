#pragma once
// The loaders fuzzed by scripts/fuzz.sh, by name. Each takes the fuzzer's bytes as a file (for
// loaders that read a path) or as text. Bad input must come out as InputErrors; anything else
// (another exception, a crash, a leak, a hang) is a bug the fuzzer reports.
#include <functional>
#include <map>
#include <string>

namespace clustersim::fuzz {

// `path` holds the same bytes as `text`.
using LoaderTarget = std::function<void(const std::string& path, const std::string& text)>;

// Every target registers here, explicitly.
std::map<std::string, LoaderTarget> register_loader_targets();

}  // namespace clustersim::fuzz
