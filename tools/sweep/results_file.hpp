#pragma once
// The JSON Lines file of a sweep: one row per (point, tier), appended and flushed as each point
// finishes, so that `kill -9` loses only the points in flight. Opening it again keeps every
// complete row, detects a truncated or garbled last line and cuts it off (its point is redone).
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clustersim::cli {

// A row as read back: its text (one line, no newline) and its parsed JSON.
struct ResultRow {
  std::string line;
  nlohmann::json value;
};

// Reads every complete row of a JSON Lines file. A last line without its newline, or one that is
// not a JSON object with a "key", is reported through `cut_at` (the byte offset where the good
// rows end) and left out; a bad line before the last is an error naming the file and line.
std::vector<ResultRow> read_result_rows(const std::string& path, long* cut_at = nullptr);

class ResultsFile {
 public:
  // Opens (or creates) `path` for appending; rows already there count as done, except "failed"
  // ones, which are run again. A truncated last line is cut off and reported on stderr.
  explicit ResultsFile(const std::string& path);
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;

  // The row of a key that is done, or null.
  const nlohmann::json* done(const std::string& key) const;
  std::size_t rows_read() const { return rows_.size(); }
  // Appends one row (compact JSON, no newline) and flushes it to the file.
  void append(const std::string& line);
  // Rewrites the file with the rows of `keys_in_order` first, in that order, then any other row
  // (of other inputs) in the order they were written; atomically (temporary file, rename).
  void rewrite_in_order(const std::vector<std::string>& keys_in_order);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<ResultRow> rows_;            // every row in the file, in file order
  std::map<std::string, std::size_t> by_key_;  // the last complete, non-failed row of each key
};

}  // namespace clustersim::cli
