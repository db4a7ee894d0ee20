#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "traces/chrome_trace_writer.hpp"

namespace clustersim::traces {
namespace {

TEST(ChromeTraceWriter, WritesSortedMicrosecondEventsWithNamesAndFlows) {
  ChromeTraceWriter w;
  w.name_process(1, "rank 1");
  w.name_thread(1, 0, "compute");
  w.add_span({1, 0, "mlp_fwd", "compute", 2e-3, 1e-3, {{"layer", "3"}}});
  w.add_span({1, 0, "attn_fwd", "compute", 1e-3, 5e-4, {}});
  w.add_flow({7, 0, 1, 3e-3, 2, 1, 3.5e-3, "pp_send"});
  std::ostringstream out;
  w.write(out);
  auto doc = nlohmann::json::parse(out.str());
  const auto& e = doc.at("traceEvents");
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0]["name"], "process_name");
  EXPECT_EQ(e[1]["args"]["name"], "compute");
  EXPECT_EQ(e[2]["name"], "attn_fwd");  // sorted by start time
  EXPECT_DOUBLE_EQ(e[2]["ts"].get<double>(), 1000.0);
  EXPECT_DOUBLE_EQ(e[3]["dur"].get<double>(), 1000.0);
  EXPECT_EQ(e[3]["args"]["layer"], "3");
  EXPECT_EQ(e[4]["ph"], "s");
  EXPECT_EQ(e[5]["ph"], "f");
  EXPECT_EQ(e[5]["id"], 7);
}

}  // namespace
}  // namespace clustersim::traces
