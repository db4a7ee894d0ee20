#pragma once
// Writes a Chrome/Perfetto trace to a file, gzipped when the path ends in ".gz" (Perfetto opens
// both). Throws std::runtime_error when the file cannot be written.
#include <string>

#include "traces/chrome_trace_writer.hpp"

namespace clustersim::traces {

void write_trace_file(const ChromeTraceWriter& trace, const std::string& path);

}  // namespace clustersim::traces
