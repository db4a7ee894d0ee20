// clustersim: performance simulator for LLM training and serving on GPU clusters.
// The only place that decides the process's exit code: 0 ok, 1 internal failure, 2 bad input or
// usage (tools/command_line.cpp maps what commands throw to these).
#include <malloc.h>

#include <string>
#include <vector>

#include "tools/command_line.hpp"

int main(int argc, char** argv) {
  // search, sweep and validate build and drop schedule graphs of megabytes thousands of times:
  // glibc would map each from the kernel and unmap it on free, and every reuse page-faults its
  // memory back in. Kept in the heap they are reused without faults (scripts/bench_search.sh).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return clustersim::cli::run_command_line(std::vector<std::string>(argv + 1, argv + argc));
}
