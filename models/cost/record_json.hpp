#pragma once
// JSON form of measurement records (docs/profiles.md). A records file is
//   {"schema": "clustersim-records/1", "sources": [...], "records": [...]}
// and a profile embeds the same two arrays. Reading is strict: every problem is reported with
// the file and JSON pointer.
#include <nlohmann/json.hpp>
#include <string>

#include "models/inputs/input_error.hpp"
#include "models/inputs/json_reader.hpp"
#include "models/cost/measurement_record.hpp"

namespace clustersim {

inline constexpr const char* kRecordsSchema = "clustersim-records/1";

nlohmann::json to_json(const RecordSource& source);
nlohmann::json to_json(const MeasurementRecord& record);
// {"schema", "sources", "records"}
nlohmann::json record_set_to_json(const RecordSet& set);

// Reads the "sources" and "records" arrays of `object` into `out`, reporting bad fields to
// the reader's diagnostics. Every record must name a source listed in "sources".
void read_record_arrays(JsonObjectReader& object, RecordSet& out);

// Loads a records file; throws InputErrors on any problem.
RecordSet load_record_set(const std::string& path);

// Samples of a record in microseconds, as files store them.
nlohmann::json samples_to_us(const std::vector<double>& samples_s);

}  // namespace clustersim
