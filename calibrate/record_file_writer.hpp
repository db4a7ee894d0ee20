#pragma once
// Writes a records file as measurements finish: after every appended case the whole file is
// rewritten to a temporary beside it and renamed over it, so a run killed at any moment leaves
// either the previous or the new complete file, never a torn one.
#include <set>
#include <string>
#include <vector>

#include "models/cost/measurement_record.hpp"

namespace clustersim::calibrate {

class RecordFileWriter {
 public:
  // Starts empty, or, with resume and an existing file, from that file's sources and records
  // (loaded strictly; InputErrors when it is not a valid records file).
  RecordFileWriter(std::string path, bool resume);

  // Adds `source` unless a source with its id exists (an existing one must be identical in
  // system facts; otherwise std::invalid_argument: do not mix machines in one file).
  void ensure_source(const RecordSource& source);
  // Appends the records of one finished case and rewrites the file.
  void append(const std::vector<MeasurementRecord>& records);

  // Whether a record of case `label` is in the file (label itself, or label + " #part").
  bool has_case(const std::string& label) const;
  const RecordSet& records() const { return set_; }

 private:
  void write() const;

  std::string path_;
  RecordSet set_;
  std::set<std::string> case_labels_;
};

// Label of a record of case `label`: the label, or label + " #" + part for a case with several.
std::string case_of_label(const std::string& record_label);

}  // namespace clustersim::calibrate
