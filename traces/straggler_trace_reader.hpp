#pragma once
// Reads a per-op straggler trace: CSV with a header naming the columns (any order; unknown
// columns are ignored), plain or gzip-compressed. Bad rows are reported as InputErrors whose
// pointer is "line N, column C"; at most kMaxReportedErrors are collected before giving up.
#include <string>
#include <string_view>

#include "traces/straggler_trace.hpp"

namespace clustersim::traces {

inline constexpr std::size_t kMaxReportedTraceErrors = 10;

// Reads `path` (gzip or plain; detected from the content). Throws InputErrors.
StragglerTrace read_straggler_trace(const std::string& path);

// Parses CSV text already in memory; `file` names it in messages.
StragglerTrace parse_straggler_trace(std::string_view text, const std::string& file);

}  // namespace clustersim::traces
