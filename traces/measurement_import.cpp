#include "traces/measurement_import.hpp"

#include <algorithm>

#include "models/inputs/input_error.hpp"
#include "traces/kineto_trace_reader.hpp"
#include "traces/measurement_input.hpp"
#include "traces/nccl_tests_common.hpp"
#include "traces/nccl_tests_json_reader.hpp"
#include "traces/nccl_tests_log_reader.hpp"
#include "traces/published_table_reader.hpp"

namespace clustersim {

namespace {

constexpr const char* kFormats =
    "clustersim imports nccl-tests stdout, nccl-tests -J JSON, PyTorch profiler (Kineto) "
    "Chrome traces (.json or .json.gz) and published tables (docs/profiles.md)";

bool is_text(const std::string& text) {
  return std::none_of(text.begin(), text.end(), [](char c) { return c == '\0'; });
}

}  // namespace

RecordSet import_measurement_file(const std::string& path) {
  std::string text = read_measurement_file(path);
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw_input_error(path, "", "the file is empty", kFormats);
  auto hint = collective_from_file_name(file_name_of(path));
  if (text[first] == '{') {
    nlohmann::json doc = parse_measurement_json(text, path);
    if (looks_like_kineto_trace(doc)) return read_kineto_trace(doc, path);
    if (looks_like_nccl_tests_json(doc)) return read_nccl_tests_json(doc, path, hint);
    throw_input_error(path, "",
                      "unrecognised JSON: neither a Kineto trace (\"traceEvents\") nor nccl-tests "
                      "-J output (\"results\" with \"config\")",
                      kFormats);
  }
  if (is_text(text)) {
    if (looks_like_published_table(text)) return read_published_table(text, path);
    if (looks_like_nccl_tests_log(text)) {
      NcclTestsLogHints hints;
      hints.collective = hint;
      return read_nccl_tests_log(text, path, hints);
    }
  }
  throw_input_error(path, "line 1", "unrecognised measurement format", kFormats);
}

}  // namespace clustersim
