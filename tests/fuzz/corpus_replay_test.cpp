// Replays every committed fuzzing finding (tests/data/fuzz/<target>/) through its loader in the
// ordinary test build, so a fixed crash stays fixed without clang or libFuzzer: each must load or
// be rejected with InputErrors, nothing else (scripts/fuzz.sh finds them; REPLAY=1 replays them
// under the fuzzer's sanitizers).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "models/inputs/input_error.hpp"
#include "tests/fuzz/loader_targets.hpp"

namespace clustersim {
namespace {

namespace fs = std::filesystem;

TEST(FuzzCorpus, EveryCommittedFindingLoadsOrIsAnInputError) {
  const fs::path root = fs::path(CLUSTERSIM_SOURCE_DIR) / "tests" / "data" / "fuzz";
  const auto targets = fuzz::register_loader_targets();
  int replayed = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const std::string name = dir.path().filename().string();
    const auto target = targets.find(name);
    ASSERT_NE(target, targets.end()) << "tests/data/fuzz/" << name << " names no fuzz target";
    for (const auto& file : fs::directory_iterator(dir.path())) {
      std::ifstream in(file.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      try {
        target->second(file.path().string(), bytes.str());
      } catch (const InputErrors&) {
        // Rejected with file, pointer and message: what bad input should get.
      } catch (const std::exception& e) {
        ADD_FAILURE() << file.path() << ": not an InputError: " << e.what();
      }
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0);
}

}  // namespace
}  // namespace clustersim
