#pragma once
// Reads a published-numbers table: "# key: value" lines describing the source, then CSV
// tables, each starting with a header row "op,...". One row = one record with one sample,
// the time derived exactly from the published throughput. Format, columns and the FLOP and
// bandwidth conventions: docs/profiles.md, section "Published tables".
#include <string>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

// True when `text` starts (after blank lines) with "# key: value" lines naming a source_id
// and holds a header row starting with "op,".
bool looks_like_published_table(const std::string& text);

// Throws InputErrors naming "line N" and the column.
RecordSet read_published_table(const std::string& text, const std::string& file);


}  // namespace clustersim
