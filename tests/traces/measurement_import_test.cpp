#include <gtest/gtest.h>

#include "tests/support/temp_files.hpp"
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "models/inputs/input_error.hpp"
#include "traces/measurement_import.hpp"
#include "models/cost/record_json.hpp"

namespace clustersim {
namespace {

class MeasurementImport : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = test::temp_path("import");
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string gzip(const std::string& name, const std::string& text) {
    auto path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
    return path;
  }
  static std::string error_of(const std::string& path) {
    try {
      import_measurement_file(path);
    } catch (const InputErrors& e) {
      return e.what();
    }
    return "no error";
  }
};

const std::string kLog =
    "#  Rank  0 Group  0 Pid 1 on h device  0 [0x01] GPU\n"
    "#  Rank  1 Group  0 Pid 1 on h device  1 [0x02] GPU\n"
    "#       size  count  type  redop  root  time  algbw  busbw #wrong  time  algbw  busbw #wrong\n"
    "     1000000  250000 float sum -1  100.0  10.00  10.00  0  100.0  10.00  10.00  0\n";

TEST_F(MeasurementImport, DetectsByContentAndTakesTheCollectiveFromTheFileName) {
  // No binary named in the log: the file name says all_reduce; the extension says nothing.
  RecordSet set = import_measurement_file(write("all_reduce_2gpu.data", kLog));
  ASSERT_EQ(set.records.size(), 2u);
  EXPECT_EQ(std::get<CollectiveRecord>(set.records[0].shape).kind, CollectiveKind::kAllReduce);
  // The same log gzipped, and its records survive the strict JSON round trip.
  RecordSet gz = import_measurement_file(gzip("all_reduce_2gpu.log.gz", kLog));
  EXPECT_EQ(gz.sources[0].id, "all_reduce_2gpu");
  auto path = write("records.json", record_set_to_json(gz).dump());
  EXPECT_EQ(load_record_set(path).records.size(), 2u);
}

TEST_F(MeasurementImport, MalformedFilesGetClearErrors) {
  EXPECT_NE(error_of((dir_ / "missing.log").string()).find("cannot open file"), std::string::npos);
  EXPECT_NE(error_of(write("empty.log", "")).find("the file is empty"), std::string::npos);
  std::string garbage = "\x7f" "ELF\x01\x02\x00\x00garbage\xff\xfe";
  EXPECT_NE(error_of(write("garbage.bin", garbage)).find("garbage.bin:line 1: unrecognised measurement format"),
            std::string::npos);
  EXPECT_NE(error_of(write("prose.txt", "hello\nworld\n")).find("unrecognised measurement format"),
            std::string::npos);
  // A gzip stream cut in half.
  std::string whole = gzip("whole.gz", std::string(5000, 'x') + kLog);
  std::ifstream in(whole, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(error_of(write("cut.json.gz", bytes.substr(0, bytes.size() / 2))).find("corrupt gzip data"),
            std::string::npos);
  EXPECT_NE(error_of(write("bad.json", "{\"traceEvents\": [1, 2,\n")).find("malformed JSON at line 2"),
            std::string::npos);
  EXPECT_NE(error_of(write("other.json", "{\"a\": 1}")).find("unrecognised JSON"), std::string::npos);
  std::string truncated = kLog.substr(0, kLog.size() - 30) + "\n";
  EXPECT_NE(error_of(write("all_reduce_cut.log", truncated)).find("all_reduce_cut.log:line 4: row has"),
            std::string::npos);
  std::string bad_time = kLog;
  bad_time.replace(bad_time.find("100.0"), 5, "1o0.0");
  EXPECT_NE(error_of(write("all_reduce_bad.log", bad_time))
                .find("line 4: column \"time\" (out-of-place): expected a time in microseconds"),
            std::string::npos);
  EXPECT_NE(error_of(write("layout.log", "#  size  count  type  latency  busbw\n")).find("line 1: unknown column \"latency\""),
            std::string::npos);
}

}  // namespace
}  // namespace clustersim
