#pragma once
// Reading a measurement file for the importers: the bytes (gunzipped when gzip), JSON parsing
// with line and column on failure, and the names a file gives its records' source.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace clustersim {

// The whole file; gzip data (by its magic bytes, not the extension) is decompressed.
// Throws InputErrors when the file cannot be read or the gzip stream is corrupt or truncated.
std::string read_measurement_file(const std::string& path);

// Parses JSON text; throws an InputError naming line and column when it is malformed.
nlohmann::json parse_measurement_json(const std::string& text, const std::string& file);

// "runs/all_reduce_h100.log.gz" -> "all_reduce_h100.log.gz"
std::string file_name_of(std::string_view path);
// A source id from the file name: "runs/all_reduce_h100.log.gz" -> "all_reduce_h100".
std::string source_id_from_path(std::string_view path);

}  // namespace clustersim
