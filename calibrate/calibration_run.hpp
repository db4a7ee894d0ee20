#pragma once
// `clustersim calibrate run`: the sweep of the chosen suites, measured by a backend, written
// record by record (RecordFileWriter), with one line of progress per case on `progress`.
#include <ostream>
#include <string>
#include <vector>

#include "calibrate/backend.hpp"
#include "calibrate/record_file_writer.hpp"
#include "calibrate/sweep_case.hpp"

namespace clustersim::calibrate {

struct RunSummary {
  std::size_t cases = 0;     // in the sweep
  std::size_t measured = 0;  // this run
  std::size_t skipped = 0;   // already in the file (--resume)
  std::size_t records = 0;   // in the file at the end
};

// Measures every case the writer does not already hold. Each record gets the case's label
// (MoE parts: "<label> #dispatch"), and the source of its suite.
RunSummary run_calibration(Backend& backend, const std::vector<SweepCase>& cases,
                           RecordFileWriter& writer, std::ostream& progress);

// One line summarising a case's records: median and, for collectives, nccl-tests' busbw.
std::string progress_line(const SweepCase& c, const std::vector<MeasurementRecord>& records);

}  // namespace clustersim::calibrate
