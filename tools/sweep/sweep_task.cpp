#include "tools/sweep/sweep_task.hpp"

#include <sstream>

#include "tools/command_line.hpp"

namespace clustersim::cli {

namespace {

using nlohmann::ordered_json;

std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_./=,:+@%") == std::string::npos;
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

ordered_json row_head(const SweepTask& task, const std::string& status) {
  ordered_json row;
  row["key"] = task.key;
  row["tier"] = task.tier;
  row["status"] = status;
  row["point"] = task.point;
  row["command"] = shell_command(task.args);
  return row;
}

void row_tail(ordered_json& row, const SweepTask& task) {
  row["version"] = version_string();
  row["profile_hash"] = task.profile_hash;
}

// Warning lines the command wrote on stderr, without the "warning: " prefix.
std::vector<std::string> warning_lines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream in(err);
  std::string line;
  const std::string prefix = "warning: ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

}  // namespace

std::string task_to_line(const SweepTask& t) {
  ordered_json j = {{"tier", t.tier}, {"point", t.point}, {"args", t.args}, {"key", t.key}, {"profile_hash", t.profile_hash}};
  return j.dump();
}

SweepTask task_from_line(const std::string& line) {
  const ordered_json j = ordered_json::parse(line);
  return {j.at("tier"), j.at("point"), j.at("args").get<std::vector<std::string>>(), j.at("key"), j.at("profile_hash")};
}

std::string run_task(const SweepTask& task) {
  const CapturedCommand run = run_command_captured(task.args);
  ordered_json row;
  ordered_json result = run.exit_code == kExitOk ? ordered_json::parse(run.out, nullptr, false) : ordered_json();
  if (run.exit_code == kExitOk && !result.is_discarded()) {
    row = row_head(task, "ok");
    row["result"] = std::move(result);
  } else if (!run.input_errors.empty()) {
    // Calculon's rule: in a sweep an infeasible point is a result, with its reasons.
    row = row_head(task, "invalid");
    auto errors = ordered_json::array();
    for (const auto& e : run.input_errors) {
      errors.push_back({{"file", e.file}, {"pointer", e.pointer}, {"message", e.message}, {"hint", e.hint}});
    }
    row["errors"] = errors;
  } else {
    row = row_head(task, "failed");
    row["errors"] = ordered_json::array({{{"message", run.err}, {"exit_code", run.exit_code}}});
  }
  const auto warnings = warning_lines(run.err);
  if (!warnings.empty()) row["warnings"] = warnings;
  row_tail(row, task);
  return row.dump();
}

std::string run_task_line(const std::string& task_line) {
  const SweepTask task = task_from_line(task_line);
  try {
    return run_task(task);
  } catch (const std::exception& e) {
    return failed_row(task, e.what());
  }
}

std::string failed_row(const SweepTask& task, const std::string& why) {
  ordered_json row = row_head(task, "failed");
  row["errors"] = ordered_json::array({{{"message", why}}});
  row_tail(row, task);
  return row.dump();
}

std::string shell_command(const std::vector<std::string>& args) {
  std::string out = "clustersim";
  for (const auto& a : args) out += " " + shell_word(a);
  return out;
}

}  // namespace clustersim::cli
