#pragma once
// The sweep's rows as one CSV table (--csv): nested fields flattened to dotted columns
// ("result.breakdown.bubble_s"), lists of numbers joined by spaces, the critical path's causes
// summed per cause ("result.critical_path.cause.compute_s"); the columns are every field any row
// has, in the order first seen.
#include <string>
#include <vector>

#include "tools/sweep/results_file.hpp"

namespace clustersim::cli {

std::string rows_to_csv(const std::vector<ResultRow>& rows);
void write_rows_csv(const std::string& path, const std::vector<ResultRow>& rows);

}  // namespace clustersim::cli
