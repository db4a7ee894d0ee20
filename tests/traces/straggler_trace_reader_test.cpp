// Reading per-op straggler traces and their job metadata: good input, every kind of bad row,
// gzip, and (when the shared reference data is present) the three published traces.
#include <gtest/gtest.h>

#include "tests/support/temp_files.hpp"
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/inputs/input_error.hpp"
#include "traces/straggler_job_meta_reader.hpp"
#include "traces/straggler_trace_reader.hpp"

namespace clustersim::traces {
namespace {

const std::string kHeader = "dp_rank,stage,rank,step,optype,start_ts,duration,seq_id,mc,mb_id,gmc\n";
const std::string kReferenceDir = CLUSTERSIM_STRAGGLER_TRACES_DIR;

// The first error `read` throws, or an empty error if it does not throw.
template <typename Read>
InputError first_error_of(Read read) {
  try {
    read();
  } catch (const InputErrors& e) {
    return e.errors().front();
  }
  return {};
}

InputError first_error(const std::string& text) {
  return first_error_of([&] { parse_straggler_trace(text, "t.csv"); });
}

TEST(StragglerTraceReader, ReadsRowsByColumnName) {
  // Columns in another order plus an unknown column, which is ignored; CRLF line ends.
  std::string text =
      "step,optype,extra,dp_rank,stage,rank,start_ts,duration,seq_id,mc,mb_id,gmc\r\n"
      "23,backward-compute,x,0,1,2,0.8486717,0.13867968,3,0,2,1\r\n"
      "\r\n"
      "23,gc,y,1,0,1,1.5,7.1525574e-7,0,-1,0,-1\r\n";
  StragglerTrace t = parse_straggler_trace(text, "t.csv");
  ASSERT_EQ(t.ops.size(), 2u);
  const StragglerOp& a = t.ops[0];
  EXPECT_EQ(a.step, 23);
  EXPECT_EQ(a.optype, StragglerOpType::kBackwardCompute);
  EXPECT_EQ(a.dp_rank, 0);
  EXPECT_EQ(a.stage, 1);
  EXPECT_EQ(a.rank, 2);
  EXPECT_EQ(a.seq_id, 3);
  EXPECT_EQ(a.mc, 0);
  EXPECT_EQ(a.mb_id, 2);
  EXPECT_EQ(a.gmc, 1);
  EXPECT_EQ(a.line, 2);
  EXPECT_EQ(a.start_s, static_cast<double>(0.8486717f));  // the float32 the file denotes
  EXPECT_EQ(t.ops[1].optype, StragglerOpType::kGc);
  EXPECT_EQ(t.ops[1].line, 4);
  EXPECT_NEAR(t.ops[1].duration_s, 7.1525574e-7, 1e-13);
}

TEST(StragglerTraceReader, EveryOpTypeNameRoundTrips) {
  for (auto name : op_type_names()) {
    auto type = parse_op_type(name);
    ASSERT_TRUE(type) << name;
    EXPECT_EQ(op_type_name(*type), name);
  }
  EXPECT_FALSE(parse_op_type("forward"));
}

struct BadRow {
  std::string row;
  std::string pointer;
  std::string message;
  std::string hint;
};

TEST(StragglerTraceReader, BadRowsNameLineColumnAndWhatIsValid) {
  const BadRow cases[] = {
      {"0,0,0,1,forward-compte,0,1,0,0,0,0", "line 2, column optype",
       "unknown optype \"forward-compte\"", "did you mean \"forward-compute\"?"},
      {"0,0,0,1,forward-compute,zero,1,0,0,0,0", "line 2, column start_ts",
       "\"zero\" is not a finite number", "seconds"},
      {"0,0,0,1,forward-compute,0,-0.5,0,0,0,0", "line 2, column duration",
       "negative duration -0.5", "0 or more seconds"},
      {"0,0,0,1,forward-compute,0,nan,0,0,0,0", "line 2, column duration",
       "\"nan\" is not a finite number", ""},
      {"0,x,0,1,forward-compute,0,1,0,0,0,0", "line 2, column stage", "\"x\" is not an integer",
       "from 0 to 127"},
      {"0,300,0,1,forward-compute,0,1,0,0,0,0", "line 2, column stage", "300 is out of range", ""},
      {"0,0,0,1,forward-compute,0,1,0,-2,0,0", "line 2, column mc", "-2 is out of range",
       "from -1 to 127"},
      {"0,0,0,1,forward-compute,0,1", "line 2, column *", "row has 7 fields, the header has 11",
       ""},
  };
  for (const auto& c : cases) {
    InputError e = first_error(kHeader + c.row + "\n");
    EXPECT_EQ(e.file, "t.csv") << c.row;
    EXPECT_EQ(e.pointer, c.pointer) << c.row;
    EXPECT_NE(e.message.find(c.message), std::string::npos) << c.row << ": " << e.message;
    EXPECT_NE(e.hint.find(c.hint), std::string::npos) << c.row << ": " << e.hint;
  }
}

TEST(StragglerTraceReader, MissingColumnsAreNamed) {
  InputError e = first_error("dp_rank,stage,rank,step,start_ts,duration,seq_id,mc,mb_id,gmc\n");
  EXPECT_EQ(e.pointer, "line 1, column optype");
  EXPECT_EQ(e.message, "missing column in the header");
  EXPECT_NE(first_error("").message.find("empty trace"), std::string::npos);
  EXPECT_NE(first_error(kHeader).message.find("no rows"), std::string::npos);
}

TEST(StragglerTraceReader, StopsAfterTenErrors) {
  std::string text = kHeader;
  for (int i = 0; i < 30; ++i) text += "0,0,0,1,bogus,0,1,0,0,0,0\n";
  try {
    parse_straggler_trace(text, "t.csv");
    FAIL() << "expected InputErrors";
  } catch (const InputErrors& e) {
    ASSERT_EQ(e.errors().size(), kMaxReportedTraceErrors + 1);
    EXPECT_EQ(e.errors()[9].pointer, "line 11, column optype");
    EXPECT_NE(e.errors().back().message.find("stopped after 10 errors"), std::string::npos);
  }
}

TEST(StragglerTraceReader, ReadsGzipAndPlainFilesAlike) {
  const std::string text = kHeader + "0,0,0,5,optimizer,1.25,0.5,0,-1,-1,-1\n";
  const auto& dir = test::temp_dir();
  const std::string plain = (dir / "clustersim_straggler_test.csv").string();
  const std::string packed = (dir / "clustersim_straggler_test.csv.gz").string();
  std::ofstream(plain) << text;
  gzFile gz = gzopen(packed.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  StragglerTrace a = read_straggler_trace(plain);
  StragglerTrace b = read_straggler_trace(packed);
  ASSERT_EQ(a.ops.size(), 1u);
  ASSERT_EQ(b.ops.size(), 1u);
  EXPECT_EQ(b.ops[0].optype, StragglerOpType::kOptimizer);
  EXPECT_EQ(a.ops[0].start_s, b.ops[0].start_s);
  std::filesystem::remove(plain);
  std::filesystem::remove(packed);
  try {
    read_straggler_trace("/nonexistent/trace.csv");
    FAIL();
  } catch (const InputErrors& e) {
    EXPECT_EQ(e.errors().front().message, "cannot open file");
  }
}

TEST(StragglerJobMeta, ReadsFlatYamlAndJson) {
  const std::string yaml =
      "# job\ntrial_name: AR\nrun_id: 0\ndp_size: 4\ndsp_size: 1\npp_size: 4  # stages\n"
      "tp_size: 4\nvpp_size: 1\nworld_size: 64\n";
  StragglerJobMeta m = parse_straggler_job_meta(yaml, "m.yaml");
  EXPECT_EQ(m.trial_name, "AR");
  EXPECT_EQ(m.dp_size, 4);
  EXPECT_EQ(m.pp_size, 4);
  EXPECT_EQ(m.tp_size, 4);
  EXPECT_EQ(m.world_size, 64);
  StragglerJobMeta j = parse_straggler_job_meta(
      R"({"trial_name": "SE", "dp_size": 32, "dsp_size": 2, "pp_size": 2})", "m.json");
  EXPECT_EQ(j.dsp_size, 2);
  EXPECT_EQ(j.world_size, 128);
  EXPECT_EQ(j.vpp_size, 1);
}

InputError first_meta_error(const std::string& text) {
  return first_error_of([&] { parse_straggler_job_meta(text, "m.yaml"); });
}

TEST(StragglerJobMeta, BadMetadataNamesLineAndKey) {
  InputError e = first_meta_error("trial_name: x\ndp_size: 2\npp_size: 2\ntp_sise: 2\n");
  EXPECT_EQ(e.pointer, "line 4, key tp_sise");
  EXPECT_EQ(e.message, "unknown key");
  EXPECT_EQ(e.hint, "did you mean \"tp_size\"?");
  e = first_meta_error("trial_name: x\ndp_size: 2\npp_size: 2\nworld_size: 5\n");
  EXPECT_EQ(e.pointer, "line 4, key world_size");
  EXPECT_NE(e.message.find("dp_size * dsp_size * pp_size * tp_size = 4"), std::string::npos);
  e = first_meta_error("trial_name: x\ndp_size: two\npp_size: 2\n");
  EXPECT_EQ(e.pointer, "line 2, key dp_size");
  e = first_meta_error("trial_name: x\npp_size: 2\n");
  EXPECT_EQ(e.pointer, "key dp_size");
  EXPECT_EQ(e.message, "required key is missing");
  e = first_meta_error("job:\n  dp_size: 2\n");
  EXPECT_EQ(e.pointer, "line 1, key job");
  e = first_meta_error("trial_name: x\ndp_size: 2\ndp_size: 3\n");
  EXPECT_EQ(e.pointer, "line 3, key dp_size");
  EXPECT_EQ(e.message, "key also given on line 2");
}

TEST(StragglerReferenceTraces, ReadEveryRow) {
  if (!std::filesystem::exists(kReferenceDir + "/trace-ST.csv")) {
    GTEST_SKIP() << "reference traces not found in " << kReferenceDir;
  }
  struct Expect {
    std::string name;
    std::size_t rows;
    std::int64_t first_step;
    double first_start, first_duration;
  };
  for (const Expect& x : {Expect{"ST", 6784, 23, 0.8486717, 0.13867968},
                          Expect{"AR", 117216, 16, 2.6883304, 0.85434765},
                          Expect{"SE", 107328, 16, 1.0532517, 0.4124018}}) {
    const std::string file = kReferenceDir + "/trace-" + x.name + (x.name == "ST" ? ".csv" : ".csv.gz");
    StragglerTrace t = read_straggler_trace(file);
    ASSERT_EQ(t.ops.size(), x.rows) << x.name;
    EXPECT_EQ(t.ops[0].step, x.first_step);
    EXPECT_EQ(t.ops[0].optype, StragglerOpType::kBackwardCompute);
    EXPECT_EQ(t.ops[0].start_s, static_cast<double>(static_cast<float>(x.first_start)));
    EXPECT_EQ(t.ops[0].duration_s, static_cast<double>(static_cast<float>(x.first_duration)));
    StragglerJobMeta m = read_straggler_job_meta(kReferenceDir + "/meta-" + x.name + ".yaml");
    EXPECT_EQ(m.trial_name, x.name);
  }
}

}  // namespace
}  // namespace clustersim::traces
