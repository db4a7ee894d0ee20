#pragma once
// Runs the clustersim binary as a user would, capturing its output and exit code.
#include <string>
#include <vector>

#include "tests/support/temp_files.hpp"  // temp_path, write_temp: most CLI tests need both

namespace clustersim::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CommandResult run_clustersim(const std::vector<std::string>& args);

// Starts the binary in the background (stderr to /dev/null) and returns its process id, for a
// test that kills it midway.
int start_clustersim(const std::vector<std::string>& args);

}  // namespace clustersim::test
