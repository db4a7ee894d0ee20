// End-to-end runs of `clustersim whatif` on the hand-made two-stage trace, bad inputs (exit 2,
// file + line + column on stderr) and, when present, the published AR trace.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::string kData = std::string(CLUSTERSIM_TEST_DATA_DIR) + "/whatif";
const std::string kReferenceDir = CLUSTERSIM_STRAGGLER_TRACES_DIR;
const std::string kTrace = kData + "/two-stage.csv";
const std::string kMeta = kData + "/two-stage.yaml";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A copy of the two-stage trace with line `line` (1-based) replaced, in a temporary file.
std::string trace_with_line(int line, const std::string& replacement, const std::string& name) {
  std::istringstream in(slurp(kTrace));
  std::string out, text;
  for (int n = 1; std::getline(in, text); ++n) out += (n == line ? replacement : text) + "\n";
  std::string path = temp_path(name).string();
  std::ofstream(path, std::ios::binary) << out;
  return path;
}

std::string temp_file(const std::string& name, const std::string& text) {
  std::string path = temp_path(name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(WhatIfCli, HelpHasAnExample) {
  CommandResult r = run_clustersim({"whatif", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
  EXPECT_NE(r.out.find("clustersim whatif --trace"), std::string::npos);
}

TEST(WhatIfCli, TwoStageJson) {
  CommandResult r = run_clustersim({"whatif", "--trace", kTrace, "--meta", kMeta, "--format",
                                    "json", "--scenario", kData + "/scenarios.json",
                                    "--stage-layers", "0:2:1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"trace", "layout", "graph", "S", "waste", "launch_slowdown",
                          "last_stage_share", "mean_step_time_s", "baseline", "steps",
                          "attribution", "scenarios"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_NEAR(j["S"].get<double>(), 9.9 / 8.4, 1e-5);
  EXPECT_NEAR(j["mean_step_time_s"]["ideal"].get<double>(), 8.4, 1e-5);
  EXPECT_NEAR(j["steps"][0]["replayed_s"].get<double>(), j["steps"][0]["base_s"].get<double>(), 1e-9);
  EXPECT_EQ(j["attribution"]["stage"][0]["stage"], 0);
  EXPECT_EQ(j["attribution"]["worker"][0]["rank"], 0);
  EXPECT_EQ(j["attribution"]["dp_rank"][0]["dp_rank"], 0);
  ASSERT_EQ(j["scenarios"].size(), 3u);
  EXPECT_EQ(j["scenarios"][0]["name"], "rank 0 not slow");
  EXPECT_NEAR(j["scenarios"][0]["mean_step_time_s"].get<double>(), 7.65, 1e-5);
  // Faster than the ideal (8.4 s): 100 % recovered and 0.75 s beyond, never "150 %".
  for (const auto& s : j["scenarios"]) EXPECT_LE(s["recovered"].get<double>(), 1.0) << s.dump();
  EXPECT_NEAR(j["scenarios"][0]["recovered"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["scenarios"][0]["beyond_ideal_s"].get<double>(), 0.75, 1e-5);
  EXPECT_NEAR(j["scenarios"][1]["mean_step_time_s"].get<double>(), 6.9, 1e-5);
  EXPECT_NEAR(j["scenarios"][2]["mean_step_time_s"].get<double>(), 6.9, 1e-5);  // same via flag
}

TEST(WhatIfCli, TableNamesTheSlowWorker) {
  CommandResult r = run_clustersim({"whatif", "--trace", kTrace, "--meta", kMeta});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("S = 1.1786 (waste 15.2 %)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worker     rank 0 (dp_rank 0, stage 0) 1.2679"), std::string::npos) << r.out;
}

TEST(WhatIfCli, SameInputSameOutputAndPerfettoTrace) {
  const std::string p1 = temp_path("whatif_a.json").string();
  const std::string p2 = temp_path("whatif_b.json").string();
  CommandResult a = run_clustersim({"whatif", "--trace", kTrace, "--meta", kMeta, "--format",
                                    "json", "--perfetto", p1, "--timeline-step", "7"});
  CommandResult b = run_clustersim({"whatif", "--trace", kTrace, "--meta", kMeta, "--format",
                                    "json", "--perfetto", p2, "--timeline-step", "7"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  const std::string trace = slurp(p1);
  EXPECT_EQ(trace, slurp(p2));
  auto doc = nlohmann::json::parse(trace);
  int actual = 0, ideal = 0, spans = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") ++spans;
    if (e["name"] != "process_name") continue;
    const std::string name = e["args"]["name"];
    actual += name.rfind("actual step 7: rank", 0) == 0;
    ideal += name.rfind("ideal: rank", 0) == 0;
  }
  EXPECT_EQ(actual, 4);
  EXPECT_EQ(ideal, 4);
  EXPECT_EQ(spans, 2 * 36);
  std::filesystem::remove(p1);
  std::filesystem::remove(p2);
}

struct BadCase {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> stderr_has;
};

TEST(WhatIfCli, BadInputExitsTwoNamingFileLineAndColumn) {
  const std::string bad_optype =
      trace_with_line(4, "0,0,0,7,backward-recieve,2.1,3.1,0,-1,-1,-1", "whatif_bad_optype.csv");
  const std::string bad_number =
      trace_with_line(5, "0,0,0,7,backward-compute,5.2,four,0,0,0,0", "whatif_bad_number.csv");
  const std::string negative =
      trace_with_line(5, "0,0,0,7,backward-compute,5.2,-4,0,0,0,0", "whatif_negative.csv");
  const std::string no_column = trace_with_line(
      1, "dp_rank,stage,rank,step,optype,start_ts,seq_id,mc,mb_id,gmc", "whatif_no_column.csv");
  const std::string bad_meta = temp_file("whatif_bad_meta.yaml", "trial_name: x\ndp_size: 2\npp_size: 2\ntp_sise: 1\n");
  // Found by scripts/fuzz.sh (tests/data/fuzz/straggler_meta): a value that is not UTF-8 made
  // the message itself fail ("internal error: invalid UTF-8 byte").
  const std::string not_utf8_meta = temp_file("whatif_not_utf8_meta.yaml",
                                              "trial_name: x\ndp_size: 2\npp_size: 2\nvpp_size: \x90\xff\n");
  const std::string bad_scenario = temp_file(
      "whatif_bad_scenario.json", R"({"scenarios": [{"name": "x", "changes": [{"select": {"rank": 17}, "ideal": true}]}]})");
  const BadCase cases[] = {
      {"optype", {"--trace", bad_optype, "--meta", kMeta},
       {bad_optype + ":line 4, column optype: unknown optype \"backward-recieve\"",
        "did you mean \"backward-recv\"?"}},
      {"number", {"--trace", bad_number, "--meta", kMeta},
       {bad_number + ":line 5, column duration: \"four\" is not a finite number"}},
      {"negative", {"--trace", negative, "--meta", kMeta},
       {negative + ":line 5, column duration: negative duration -4"}},
      {"column", {"--trace", no_column, "--meta", kMeta},
       {no_column + ":line 1, column duration: missing column in the header"}},
      {"meta", {"--trace", kTrace, "--meta", bad_meta},
       {bad_meta + ":line 4, key tp_sise: unknown key (did you mean \"tp_size\"?)"}},
      {"scenario", {"--trace", kTrace, "--meta", kMeta, "--scenario", bad_scenario},
       {bad_scenario + ":/scenarios/0/changes/0/select/rank: rank 17 is not in the trace"}},
      {"not_utf8", {"--trace", kTrace, "--meta", not_utf8_meta},
       {not_utf8_meta + ":line 4, key vpp_size: expected an integer, got string"}},
      {"step", {"--trace", kTrace, "--meta", kMeta, "--perfetto", temp_path("x.json").string(), "--timeline-step", "8"},
       {"--timeline-step: step 8 is not in the trace (steps in the trace: 7)"}},
      {"missing", {"--trace", kData + "/nope.csv", "--meta", kMeta}, {"nope.csv: cannot open file"}},
      {"layers", {"--trace", kTrace, "--meta", kMeta, "--stage-layers", "3"},
       {"--stage-layers: \"3\" is not STAGE:FROM:TO"}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"whatif"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CommandResult r = run_clustersim(args);
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.name;
    for (const auto& line : c.stderr_has) {
      EXPECT_NE(r.err.find(line), std::string::npos) << c.name << " expected:\n  " << line
                                                     << "\nstderr:\n" << r.err;
    }
  }
  for (const auto& path : {bad_optype, bad_number, negative, no_column, bad_meta, bad_scenario}) {
    std::filesystem::remove(path);
  }
}

TEST(WhatIfCli, PublishedArTrace) {
  const std::string trace = kReferenceDir + "/trace-AR.csv.gz";
  if (!std::filesystem::exists(trace)) GTEST_SKIP() << "reference trace not found: " << trace;
  CommandResult r = run_clustersim(
      {"whatif", "--trace", trace, "--meta", kReferenceDir + "/meta-AR.yaml", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["S"].get<double>(), 1.9730, 0.02 * 1.9730);
  EXPECT_LT(j["baseline"]["max_relative_error"].get<double>(), 0.01);
  EXPECT_EQ(j["attribution"]["stage"][0]["stage"], 0);
  EXPECT_EQ(j["attribution"]["worker"][0]["rank"], 0);
  EXPECT_EQ(j["trace"]["ops"], 117216);
}

}  // namespace
}  // namespace clustersim::test
