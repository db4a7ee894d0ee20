// calibrate run end to end on the CPU backend: every suite, then calibrate fit; --backend cuda
// on a machine without a usable GPU (or a build without CUDA) fails cleanly with exit 2; a run
// killed mid-way leaves a records file that loads.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>


#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "models/cost/record_json.hpp"
#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

namespace fs = std::filesystem;


TEST(CalibrateRunCli, CpuAllSuitesThenFit) {
  const fs::path records = temp_path("cpu-all.records.json");
  const fs::path profile = temp_path("cpu-all.profile.json");
  const CommandResult run =
      run_clustersim({"calibrate", "run", "--backend", "cpu", "--suite", "all", "-o", records.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("[1/"), std::string::npos) << "progress goes to stderr";
  const RecordSet set = load_record_set(records.string());
  EXPECT_GT(set.records.size(), 100u);
  for (const auto& s : set.sources) {
    EXPECT_EQ(s.gpu.rfind("cpu: ", 0), 0u);
    EXPECT_EQ(s.timer, "host_wall");
  }
  const CommandResult fit = run_clustersim({"calibrate", "fit", records.string(), "-o", profile.string()});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  const CommandResult report = run_clustersim({"calibrate", "report", profile.string()});
  EXPECT_EQ(report.exit_code, 0) << report.err;
}

TEST(CalibrateRunCli, CudaWithoutADeviceIsAUsageError) {
  const CommandResult r = run_clustersim(
      {"calibrate", "run", "--backend", "cuda", "--suite", "gemm", "-o", temp_path("cuda.json").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--backend cuda"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
#if defined(CLUSTERSIM_CUDA_BACKEND_BUILT)
  // The module beside the binary loaded; what is missing is the device, not the backend.
  EXPECT_EQ(r.err.find("cannot load the CUDA backend module"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CUDA device"), std::string::npos) << r.err;
#endif
}

TEST(CalibrateRunCli, UnknownSuiteAndMissingOutputAreUsageErrors) {
  EXPECT_EQ(run_clustersim({"calibrate", "run", "--suite", "gemms", "-o", temp_path("x.json").string()}).exit_code, 2);
  EXPECT_EQ(run_clustersim({"calibrate", "run", "--suite", "gemm"}).exit_code, 2);
}

// Start a full CPU run, kill it (SIGKILL: no chance to clean up) once the file holds a record,
// and load what it left.
TEST(CalibrateRunCli, KilledRunLeavesAValidRecordsFile) {
  const fs::path records = temp_path("killed.records.json");
  fs::remove(records);
  const pid_t pid = start_clustersim({"calibrate", "run", "--backend", "cpu", "--suite", "all", "--iterations", "20",
                                      "-o", records.string()});
  std::size_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(records);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("\"samples_us\"") != std::string::npos) {
      seen = 1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_EQ(seen, 1u) << "no record appeared within 60 s";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  const RecordSet set = load_record_set(records.string());  // throws if torn
  EXPECT_GE(set.records.size(), 1u);
  // And --resume picks up where it stopped.
  const CommandResult resumed = run_clustersim({"calibrate", "run", "--backend", "cpu", "--suite",
                                                "gemm", "--resume", "-o", records.string()});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("already in"), std::string::npos);
}

}  // namespace
}  // namespace clustersim::test
