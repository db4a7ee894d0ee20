#pragma once
// Reads the stdout of nccl-tests (all_reduce_perf and friends) into collective records.
//
// Columns are found by their names in the header row ("size count type redop root time algbw
// busbw #wrong ..."), so old logs ("error" instead of "#wrong", no "root", no "redop"), new ones
// ("redop", "root"), -I per-iteration columns (i_min i_max i_p99 i_cv%), -T timestamps and
// in-place-first tables (mscclpp-test) read alike. MPI output prefixes ("[0] ",
// "[1,0]<stdout>:") are stripped. Each row gives one record per half (out-of-place,
// in-place) whose time is not "N/A"; the sample is the printed time, nccl-tests' host-timed
// mean over "iters" iterations. A file may hold several runs (one per "# nThread" line);
// each run gets its own source.
//
// Which collective: the "# Collective test starting: <binary>" line, else the last nccl-tests
// binary named before the table (the pasted command line), else the caller's hint (the
// importer derives one from the file name). Ranks: the "# Rank" lines (highest rank + 1),
// else a launcher's "-np N" times nThread x nGpus, else the caller's hint. Every printed
// algbw and busbw is checked against size / time and the busbw factor; more than 2 % apart is
// an error (it catches a wrong column mapping, collective or rank count).
#include <optional>
#include <string>

#include "models/cost/measurement_record.hpp"

namespace clustersim {

struct NcclTestsLogHints {
  std::optional<CollectiveKind> collective;  // used when the log names no binary
  std::optional<int> ranks;                  // used when the log lists no ranks
};

// `file` names the input in messages ("file:line N: ..."). Throws InputErrors.
RecordSet read_nccl_tests_log(const std::string& text, const std::string& file,
                              const NcclTestsLogHints& hints = {});

// True when `text` looks like nccl-tests stdout (an "nThread ... nGpus" line or a header
// row naming busbw).
bool looks_like_nccl_tests_log(const std::string& text);

}  // namespace clustersim
