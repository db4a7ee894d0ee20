#pragma once
// Runs the clustersim binary as a user would, capturing its output and exit code.
#include <filesystem>
#include <string>
#include <vector>

namespace clustersim::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CommandResult run_clustersim(const std::vector<std::string>& args);

// A path under the test temporary directory, unique to this process: builds of the same test
// (release and sanitizer) may run at once on the machine.
std::filesystem::path temp_path(const std::string& name);

// Writes `text` to temp_path(name) and returns that path.
std::string write_temp(const std::string& name, const std::string& text);

}  // namespace clustersim::test
