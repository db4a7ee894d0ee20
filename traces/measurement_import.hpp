#pragma once
// One entry point for every measurement format clustersim imports.
#include <string>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

// Detects the format from the content (not the extension) and imports it:
//   - gzip is decompressed first (by its magic bytes);
//   - JSON with "traceEvents": a PyTorch profiler (Kineto) trace (kineto_trace_reader.hpp);
//   - JSON with "results" and "config"/"args": nccl-tests -J output (nccl_tests_json_reader.hpp);
//   - text starting with "# source_id: ..." lines and an "op,..." header: a published table
//     (published_table_reader.hpp, docs/profiles.md);
//   - text with an "nThread ... nGpus" line or a "size ... busbw" header: nccl-tests stdout
//     (nccl_tests_log_reader.hpp).
// nccl-tests output that names no binary takes its collective from the file name
// ("all_gather_8xh100.log"). Throws InputErrors naming the file and a pointer ("line N" for
// text, a JSON pointer for JSON) with a hint of what would be valid.
RecordSet import_measurement_file(const std::string& path);

}  // namespace clustersim
