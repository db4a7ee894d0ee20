// calibrate import / fit / report end to end, on the shipped measurements and profiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

namespace fs = std::filesystem;
const fs::path kSource = CLUSTERSIM_SOURCE_DIR;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> measurement_files(const std::string& gpu) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kSource / "configs/measurements" / gpu)) {
    if (e.path().extension() == ".csv") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());  // the order scripts/make_profiles.sh globs them in
  return out;
}

// The shipped profiles are exactly what scripts/make_profiles.sh makes from the transcribed
// measurements: nobody edited a fitted number by hand.
TEST(CalibrateCli, ShippedProfilesRegenerateByteForByte) {
  const std::map<std::string, std::string> clusters = {
      {"a100", "a100-hdr"}, {"h100", "h100-ndr"}, {"h200", "h200-ndr"}, {"h800", "h800-roce"}, {"b200", ""}};
  for (const auto& [gpu, cluster] : clusters) {
    fs::path out = temp_path(gpu + ".profile.json");
    std::vector<std::string> args = {"calibrate", "fit"};
    for (const auto& f : measurement_files(gpu)) args.push_back(f);
    if (!cluster.empty()) {
      args.push_back("--cluster");
      args.push_back(cluster);
    }
    for (std::string a : {"--name", gpu.c_str(), "-o", out.c_str()}) args.push_back(a);
    CommandResult r = run_clustersim(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(out), read_file(kSource / "configs/profiles" / (gpu + ".json")))
        << gpu << ": run scripts/make_profiles.sh and commit the result";
    fs::remove(out);
  }
}

nlohmann::json report(const std::string& profile) {
  CommandResult r = run_clustersim({"calibrate", "report", profile, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

const nlohmann::json& fit(const nlohmann::json& rep, const std::string& id) {
  for (const auto& f : rep.at("fits")) {
    if (f.at("id") == id) return f;
  }
  static const nlohmann::json none;
  ADD_FAILURE() << "no fit " << id;
  return none;
}

// `calibrate import` of a shipped transcription (a path below configs/measurements/) into `records`.
CommandResult import_measurement(const std::string& measurement, const fs::path& records) {
  return run_clustersim({"calibrate", "import", (kSource / "configs/measurements" / measurement).string(), "-o",
                         records.string()});
}

// Issue targets for every published curve of six or more points: in-sample MAPE <= 10 %,
// leave-one-out <= 15 %.
TEST(CalibrateCli, PublishedCurvesMeetTheErrorTargets) {
  const std::vector<std::pair<std::string, std::string>> curves = {
      {"h100", "all_reduce/any/8x1"},
      {"h200", "all_reduce/any/8x1"},
      {"a100", "all_reduce/any/8x1"},
      {"b200", "all_reduce/any/8x1"},
      {"b200", "all_reduce/any/32x4"},
      {"h800", "gemm/fp8"},
      {"h100", "gemm/fp8"},
      {"h200", "gemm/fp8"},
      {"a100", "gemm/fp16"},
      {"h100", "gemm/fp16"},
      {"h100", "attention/forward_backward/full/d64"},
      {"h100", "attention/forward_backward/full/d128"},
      {"h100", "attention/forward_backward/causal/d64"},
      {"h100", "attention/forward_backward/causal/d128"},
      {"h800", "moe_dispatch/deepep_low_latency"},
      {"h800", "moe_combine/deepep_low_latency"},
  };
  for (const auto& [gpu, id] : curves) {
    nlohmann::json f = fit(report(gpu), id);
    if (f.is_null()) continue;
    EXPECT_GE(f.at("points").get<int>(), 6) << gpu << " " << id;
    EXPECT_LE(f.at("mape").get<double>(), 0.10) << gpu << " " << id;
    ASSERT_FALSE(f.at("loo_mape").is_null()) << gpu << " " << id;
    EXPECT_LE(f.at("loo_mape").get<double>(), 0.15) << gpu << " " << id;
    EXPECT_EQ(f.at("status"), "ok") << gpu << " " << id;
  }
}

TEST(CalibrateCli, RooflineDefaultsAreFlaggedInReportAndFile) {
  nlohmann::json rep = report("h800");
  const nlohmann::json& f = fit(rep, "gemm/bf16");
  EXPECT_EQ(f.at("origin"), "roofline_default");
  EXPECT_EQ(f.at("status"), "ROOFLINE DEFAULT");
  EXPECT_NE(f.at("note").get<std::string>().find("roofline default, not measured"), std::string::npos);
  CommandResult table = run_clustersim({"calibrate", "report", "h800"});
  EXPECT_NE(table.out.find("gemm/bf16"), std::string::npos);
  EXPECT_NE(table.out.find("ROOFLINE DEFAULT"), std::string::npos);
}

TEST(CalibrateCli, ImportWritesRecordsThatFitReads) {
  fs::path records = temp_path("ar.records.json");
  CommandResult imp = import_measurement("h100/azure-nccl-all-reduce.csv", records);
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.err.find("24 record(s) from 1 source(s)"), std::string::npos) << imp.err;
  CommandResult fitted = run_clustersim({"calibrate", "fit", records.string()});
  ASSERT_EQ(fitted.exit_code, 0) << fitted.err;
  nlohmann::json profile = nlohmann::json::parse(fitted.out);
  EXPECT_EQ(profile.at("schema"), "clustersim-profile/1");
  ASSERT_EQ(profile.at("fits").size(), 1u);
  EXPECT_EQ(profile.at("fits")[0].at("id"), "all_reduce/any/8x1");
  fs::remove(records);
}

// Vidur's H100 projections (configs/measurements/h100/vidur-h100-linear-fp16.csv): 96 FP16
// GEMMs, 64..4096 tokens, fitted at MAPE 8.8 %, leave-one-out 8.9 % when transcribed.
TEST(CalibrateCli, VidurH100ProjectionsImportAndFitTheSixteenBitGemm) {
  fs::path records = temp_path("vidur.records.json");
  CommandResult imp = import_measurement("h100/vidur-h100-linear-fp16.csv", records);
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.err.find("96 record(s) from 1 source(s)"), std::string::npos) << imp.err;
  fs::remove(records);

  const nlohmann::json f = fit(report("h100"), "gemm/fp16");
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f.at("origin"), "fitted");
  EXPECT_EQ(f.at("points").get<int>(), 96);
  EXPECT_LE(f.at("mape").get<double>(), 0.09);
  ASSERT_FALSE(f.at("loo_mape").is_null());
  EXPECT_LE(f.at("loo_mape").get<double>(), 0.10);
}

TEST(CalibrateCli, EverySubcommandHasHelpWithAnExample) {
  for (const char* sub : {"import", "fit", "report"}) {
    CommandResult r = run_clustersim({"calibrate", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Example"), std::string::npos) << sub;
  }
}

}  // namespace
}  // namespace clustersim::test
