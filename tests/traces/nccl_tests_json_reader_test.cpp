#include <gtest/gtest.h>

#include "models/inputs/input_error.hpp"
#include "traces/measurement_import.hpp"
#include "traces/nccl_tests_json_reader.hpp"

namespace clustersim {
namespace {

const std::string kDir = std::string(CLUSTERSIM_TEST_DATA_DIR) + "/nccl_tests/";

std::string error_of(const nlohmann::json& doc) {
  try {
    read_nccl_tests_json(doc, "r.json");
  } catch (const InputErrors& e) {
    return e.what();
  }
  return "no error";
}

nlohmann::json minimal() {
  return {{"args", {"./build/all_reduce_perf"}},
          {"config", {{"nthreads", 1}, {"ngpus", 4}, {"devices", {{{"hostname", "h"}, {"device_info", "GPU"}}}}}},
          {"results",
           {{{"size", 268435456}, {"type", "float"}, {"root", "    -1"},
             {"out_of_place", {{"time", 15654.0}, {"alg_bw", 17.148}, {"bus_bw", 25.722}, {"nwrong", 0.0}}},
             {"in_place", nullptr}}}}};
}

TEST(NcclTestsJson, ReadsTheWriterLayout) {
  // Constructed from nccl-tests' JSON writer (src/util.cu), numbers from a public log.
  RecordSet set = import_measurement_file(kDir + "all_reduce_constructed.json");
  ASSERT_EQ(set.sources.size(), 1u);
  const RecordSource& s = set.sources[0];
  EXPECT_EQ(s.tool, "nccl-tests all_reduce_perf");
  EXPECT_EQ(s.nccl, "2.27.3");
  EXPECT_EQ(s.gpu, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(s.iterations, 20);
  EXPECT_EQ(s.env.count("PATH"), 0u);
  EXPECT_EQ(s.env.at("NCCL_ALGO"), "Ring");
  ASSERT_EQ(set.records.size(), 4u);
  const auto& c = std::get<CollectiveRecord>(set.records[3].shape);
  EXPECT_EQ(c.ranks, 4);  // one device entry x nthreads 1 x ngpus 4
  EXPECT_EQ(c.algorithm, "ring");
  EXPECT_TRUE(c.in_place);
  EXPECT_DOUBLE_EQ(c.size_bytes, 536870912);
  EXPECT_DOUBLE_EQ(set.records[3].samples_s[0], 31183e-6);
  EXPECT_EQ(set.records[3].label, "/results/1/in_place");
}

TEST(NcclTestsJson, PerIterationTimesBecomeSamples) {
  auto doc = minimal();
  doc["results"][0]["out_of_place_per_iter"] = {{"times_us", {15000.0, 15500.0, 16000.0}}};
  RecordSet set = read_nccl_tests_json(doc, "r.json");
  ASSERT_EQ(set.records.size(), 1u);  // in_place null
  EXPECT_EQ(set.records[0].samples_s.size(), 3u);
  EXPECT_EQ(set.sources[0].statistic, "sample");
  EXPECT_EQ(set.sources[0].timer, "cuda_event");
}

TEST(NcclTestsJson, ErrorsNameJsonPointers) {
  auto doc = minimal();
  doc["results"][0]["out_of_place"]["time"] = "fast";
  EXPECT_NE(error_of(doc).find("r.json:/results/0/out_of_place/time"), std::string::npos) << error_of(doc);
  doc = minimal();
  doc["results"][0]["out_of_place"]["bus_bw"] = 17.148;  // busbw mapped from algbw
  EXPECT_NE(error_of(doc).find("r.json:/results/0/out_of_place/bus_bw: nccl-tests printed busbw"),
            std::string::npos);
  doc = minimal();
  doc["args"] = {"./build/gather_perf"};
  EXPECT_NE(error_of(doc).find("r.json:/args: nccl-tests binary \"gather_perf\""), std::string::npos);
  doc = minimal();
  doc.erase("args");
  EXPECT_NE(error_of(doc).find("cannot tell which collective"), std::string::npos);
  doc = minimal();
  doc["results"][0]["out_of_place"]["time"] = "nan";
  EXPECT_NE(error_of(doc).find("r.json:/results: no result with a time"), std::string::npos);
}

}  // namespace
}  // namespace clustersim
