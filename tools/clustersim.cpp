// clustersim: performance simulator for LLM training and serving on GPU clusters.
// The only place that decides the process's exit code: 0 ok, 1 internal failure, 2 bad input or
// usage (tools/command_line.cpp maps what commands throw to these).
#include <string>
#include <vector>

#include "tools/command_line.hpp"

int main(int argc, char** argv) {
  return clustersim::cli::run_command_line(std::vector<std::string>(argv + 1, argv + argc));
}
