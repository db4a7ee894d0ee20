#pragma once
// Runs a function in a forked child process and returns the text it produced. SimGrid allows
// one engine per process, so every replay (baseline, scenario, each validation case) runs in a
// child of its own; the parent never starts SimGrid.
#include <functional>
#include <stdexcept>
#include <string>

namespace clustersim::sim {

// The child failed: its exception's message, or how it died.
class ChildProcessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `body` runs in the child; what it returns comes back through a pipe. An exception in the child
// becomes a ChildProcessError with its message in the parent.
std::string run_in_child_process(const std::function<std::string()>& body);

}  // namespace clustersim::sim
