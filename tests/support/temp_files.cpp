#include "tests/support/temp_files.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace clustersim::test {

namespace {

std::filesystem::path& directory() {
  static std::filesystem::path dir;
  return dir;
}

void remove_directory() {
  std::error_code ignored;
  if (!directory().empty()) std::filesystem::remove_all(directory(), ignored);
}

}  // namespace

const std::filesystem::path& temp_dir() {
  if (directory().empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "clustersim-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    directory() = pattern;
    std::atexit(remove_directory);
  }
  return directory();
}

std::filesystem::path temp_path(const std::string& name) { return temp_dir() / name; }

std::string write_temp(const std::string& name, const std::string& text) {
  const std::filesystem::path path = temp_path(name);
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace clustersim::test
