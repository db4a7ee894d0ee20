#pragma once
// A ServeOutcome (and the trace spans of a run) as bytes, to bring a --network flows run back
// from the child process that ran it (one SimGrid engine per process). Same binary on both
// sides of the pipe: plain structs are copied as they are.
#include <string>

#include "sim/serving/serve_engine.hpp"
#include "traces/chrome_trace_writer.hpp"

namespace clustersim::sim {

std::string encode_outcome(const ServeOutcome& outcome, const traces::ChromeTraceWriter* trace);
// Fills `trace` (when given) with the encoded trace's spans and names.
ServeOutcome decode_outcome(const std::string& bytes, traces::ChromeTraceWriter* trace);

}  // namespace clustersim::sim
