#include "calibrate/record_file_writer.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "models/cost/record_json.hpp"

namespace clustersim::calibrate {

namespace {

bool same_system(const RecordSource& a, const RecordSource& b) {
  return a.gpu == b.gpu && a.sm_count == b.sm_count && a.driver == b.driver && a.cuda == b.cuda &&
         a.nccl == b.nccl && a.kind == b.kind;
}

}  // namespace

std::string case_of_label(const std::string& record_label) {
  return record_label.substr(0, record_label.find(" #"));
}

RecordFileWriter::RecordFileWriter(std::string path, bool resume) : path_(std::move(path)) {
  if (resume && std::filesystem::exists(path_)) {
    set_ = load_record_set(path_);
    for (const auto& r : set_.records) case_labels_.insert(case_of_label(r.label));
  }
  write();  // the output is valid (possibly empty) from the start, and writable
}

void RecordFileWriter::ensure_source(const RecordSource& source) {
  for (const auto& s : set_.sources) {
    if (s.id != source.id) continue;
    if (!same_system(s, source)) {
      throw std::invalid_argument(path_ + ": source '" + s.id + "' was measured on '" + s.gpu +
                                  "', not on '" + source.gpu + "': write to another file");
    }
    return;
  }
  set_.sources.push_back(source);
}

void RecordFileWriter::append(const std::vector<MeasurementRecord>& records) {
  for (const auto& r : records) {
    set_.records.push_back(r);
    case_labels_.insert(case_of_label(r.label));
  }
  write();
}

bool RecordFileWriter::has_case(const std::string& label) const {
  return case_labels_.count(label) > 0;
}

void RecordFileWriter::write() const {
  const std::string temporary = path_ + ".partial." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + temporary);
    out << record_set_to_json(set_).dump(2) << '\n';
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      throw std::runtime_error("cannot write " + temporary);
    }
  }
  std::filesystem::rename(temporary, path_);
}

}  // namespace clustersim::calibrate
