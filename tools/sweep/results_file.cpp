#include "tools/sweep/results_file.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "models/inputs/input_error.hpp"
#include "tools/cli_common.hpp"

namespace clustersim::cli {

std::vector<ResultRow> read_result_rows(const std::string& path, long* cut_at) {
  std::vector<ResultRow> rows;
  if (cut_at) *cut_at = -1;
  std::ifstream in(path, std::ios::binary);
  if (!in) return rows;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string text = bytes.str();
  std::size_t start = 0, line_number = 0;
  while (start < text.size()) {
    ++line_number;
    const std::size_t end = text.find('\n', start);
    const bool last = end == std::string::npos || end + 1 == text.size();
    std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    nlohmann::json value = nlohmann::json::parse(line, nullptr, false);
    const bool good = end != std::string::npos && !value.is_discarded() && value.is_object() && value.contains("key") &&
                      value.contains("tier");
    if (!good) {
      if (!last) {
        throw_input_error(path, fmt::format("line {}", line_number), "not a sweep row",
                          "a JSON object with \"key\" and \"tier\" per line; only the last line may be cut short");
      }
      if (cut_at) *cut_at = static_cast<long>(start);
      break;
    }
    rows.push_back({std::move(line), std::move(value)});
    start = end + 1;
  }
  return rows;
}

ResultsFile::ResultsFile(const std::string& path) : path_(path) {
  long cut_at = -1;
  rows_ = read_result_rows(path, &cut_at);
  if (cut_at >= 0) {
    std::cerr << fmt::format("sweep: {}: the last line was cut short (a run was stopped while writing); "
                             "its point is run again\n", path);
    std::filesystem::resize_file(path, static_cast<std::uintmax_t>(cut_at));
  }
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    if (rows_[i].value.value("status", "") != "failed") by_key_[rows_[i].value["key"].get<std::string>()] = i;
  }
  file_ = std::fopen(path.c_str(), "ab");
  if (file_ == nullptr) throw UsageError(fmt::format("cannot write {}", path));
}

ResultsFile::~ResultsFile() {
  if (file_) std::fclose(file_);
}

const nlohmann::json* ResultsFile::done(const std::string& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &rows_[it->second].value;
}

void ResultsFile::append(const std::string& line) {
  // One write of the whole line, then to the kernel: a killed process leaves whole rows and at
  // most one cut line.
  const std::string text = line + '\n';
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0) {
    throw UsageError(fmt::format("cannot write {}", path_));
  }
  nlohmann::json value = nlohmann::json::parse(line);
  const std::string key = value["key"];
  const bool failed = value.value("status", "") == "failed";
  rows_.push_back({line, std::move(value)});
  if (!failed) by_key_[key] = rows_.size() - 1;
}

void ResultsFile::rewrite_in_order(const std::vector<std::string>& keys_in_order) {
  std::string text;
  std::set<std::size_t> written;
  std::set<std::string> listed(keys_in_order.begin(), keys_in_order.end());
  for (const auto& key : keys_in_order) {
    const auto it = by_key_.find(key);
    if (it == by_key_.end() || !written.insert(it->second).second) continue;
    text += rows_[it->second].line + '\n';
  }
  // Rows of other inputs (an earlier version of the sweep file) stay, after this sweep's rows;
  // failed rows of this sweep's keys that were since redone do not.
  std::set<std::string> kept;
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const std::string key = rows_[i].value["key"];
    if (written.count(i) || (listed.count(key) && by_key_.count(key)) || !kept.insert(key + "\n" + rows_[i].line).second) continue;
    text += rows_[i].line + '\n';
  }
  std::fclose(file_);
  file_ = nullptr;
  write_output(path_, text);
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) throw UsageError(fmt::format("cannot write {}", path_));
}

}  // namespace clustersim::cli
