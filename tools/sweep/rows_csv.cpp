#include "tools/sweep/rows_csv.hpp"

#include <fmt/format.h>

#include <map>

#include "tools/cli_common.hpp"

namespace clustersim::cli {

namespace {

using Cells = std::map<std::string, std::string>;

std::string scalar_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

void flatten(const nlohmann::ordered_json& v, const std::string& name, Cells& cells, std::vector<std::string>& columns) {
  auto put = [&](const std::string& column, std::string text) {
    if (!cells.count(column) && std::find(columns.begin(), columns.end(), column) == columns.end()) columns.push_back(column);
    cells[column] = std::move(text);
  };
  if (v.is_object()) {
    for (const auto& [key, value] : v.items()) flatten(value, name.empty() ? key : name + "." + key, cells, columns);
  } else if (v.is_array()) {
    bool scalars = true;
    for (const auto& e : v) scalars = scalars && !e.is_structured();
    if (scalars) {
      std::string joined;
      for (const auto& e : v) joined += (joined.empty() ? "" : " ") + scalar_text(e);
      put(name, joined);
      return;
    }
    if (name.ends_with("critical_path.causes")) {
      std::map<std::string, double> seconds;
      for (const auto& c : v) seconds[c.value("cause", "other")] += c.value("seconds", 0.0);
      for (const auto& [cause, s] : seconds) put(name.substr(0, name.size() - 6) + "cause." + cause + "_s", nlohmann::ordered_json(s).dump());
    } else if (name == "errors") {
      std::string joined;
      for (const auto& e : v) joined += (joined.empty() ? "" : "; ") + e.value("file", std::string()) + ":" +
                                        e.value("pointer", std::string()) + ": " + e.value("message", std::string());
      put(name, joined);
    }
    // Other lists of objects (serving pools, goodput steps) stay in the JSON Lines file.
  } else {
    put(name, scalar_text(v));
  }
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string rows_to_csv(const std::vector<ResultRow>& rows) {
  std::vector<std::string> columns;
  std::vector<Cells> table;
  for (const auto& row : rows) {
    Cells cells;
    // Fields in the order the row has them (key, tier, status, point, ..., result, ...).
    nlohmann::ordered_json value = nlohmann::ordered_json::parse(row.line);
    // The plan as one JSON cell too: grids name different keys, and a reader wants to copy it.
    if (value.contains("point") && value["point"].contains("plan") && value["point"]["plan"].is_object()) {
      value["point"]["plan_json"] = value["point"]["plan"].dump();
    }
    flatten(value, "", cells, columns);
    table.push_back(std::move(cells));
  }
  std::string out;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ',';
    out += csv_field(columns[i]);
  }
  out += '\n';
  for (const auto& cells : table) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (i) out += ',';
      const auto it = cells.find(columns[i]);
      if (it != cells.end()) out += csv_field(it->second);
    }
    out += '\n';
  }
  return out;
}

void write_rows_csv(const std::string& path, const std::vector<ResultRow>& rows) { write_output(path, rows_to_csv(rows)); }

}  // namespace clustersim::cli
