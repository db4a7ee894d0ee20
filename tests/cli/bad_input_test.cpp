// One fixture per validation rule (tests/data/bad_inputs.json): the exit code must be 2 and
// stderr must carry the file, the JSON pointer and the message of every error (and none of the
// lines a case lists under "not_stderr").
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::string kData = CLUSTERSIM_TEST_DATA_DIR;

std::string expand(std::string s) {
  for (auto at = s.find("{data}"); at != std::string::npos; at = s.find("{data}")) {
    s.replace(at, 6, kData);
  }
  return s;
}

struct BadInputCase {
  std::string name;
  std::vector<std::string> args;
  int exit_code;
  std::vector<std::string> stderr_lines;
  std::vector<std::string> not_stderr;  // must not appear (a spurious second error, work done first)
};

std::vector<BadInputCase> load_cases() {
  std::ifstream in(kData + "/bad_inputs.json");
  nlohmann::json cases = nlohmann::json::parse(in);
  std::vector<BadInputCase> out;
  for (const auto& c : cases) {
    BadInputCase x{c.at("name"), {}, c.at("exit"), {}, {}};
    for (const auto& a : c.at("args")) x.args.push_back(expand(a));
    for (const auto& e : c.at("stderr")) x.stderr_lines.push_back(expand(e));
    for (const auto& e : c.value("not_stderr", nlohmann::json::array())) x.not_stderr.push_back(expand(e));
    out.push_back(std::move(x));
  }
  return out;
}

void PrintTo(const BadInputCase& c, std::ostream* os) { *os << c.name; }

class BadInput : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(BadInput, ExitsTwoNamingFilePointerAndMessage) {
  const BadInputCase& c = GetParam();
  CommandResult r = run_clustersim(c.args);
  EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
  EXPECT_TRUE(r.out.empty()) << "nothing may be printed to stdout on bad input: " << r.out;
  for (const auto& line : c.stderr_lines) {
    EXPECT_NE(r.err.find(line), std::string::npos) << "expected in stderr:\n  " << line
                                                   << "\nstderr was:\n" << r.err;
  }
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  for (const auto& line : c.not_stderr) {
    EXPECT_EQ(r.err.find(line), std::string::npos) << "not expected in stderr:\n  " << line << "\nstderr was:\n" << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BadInput, ::testing::ValuesIn(load_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace clustersim::test
