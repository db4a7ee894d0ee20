// libFuzzer entry point of one loader target (CLUSTERSIM_FUZZ_TARGET, a name from
// register_loader_targets). The bytes are handed over as an in-memory file (memfd) and as text.
// InputErrors is the expected way to reject them; any other exception aborts, so the fuzzer
// keeps the input as a crasher.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "models/inputs/input_error.hpp"
#include "tests/fuzz/loader_targets.hpp"

namespace {

const clustersim::fuzz::LoaderTarget& target() {
  static const auto targets = clustersim::fuzz::register_loader_targets();
  static const auto& t = targets.at(CLUSTERSIM_FUZZ_TARGET);
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const int fd = memfd_create("clustersim-fuzz", 0);
  if (fd < 0 || write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    target()(path, text);
  } catch (const clustersim::InputErrors&) {
    // Rejected with file, pointer and message: what bad input should get.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clustersim fuzz %s: not an InputError: %s\n", CLUSTERSIM_FUZZ_TARGET, e.what());
    std::abort();
  }
  close(fd);
  return 0;
}
