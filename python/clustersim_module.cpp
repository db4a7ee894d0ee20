// _clustersim: the clustersim commands inside Python. One function, run(args), runs a command
// line through the same registry and error mapping as the clustersim executable
// (tools/command_line.hpp) and returns what it printed; the clustersim package (clustersim/)
// builds the command lines from Python values and turns the JSON into dicts.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <tuple>
#include <vector>

#include "tools/command_line.hpp"

namespace py = pybind11;

namespace {

// (exit code, stdout, stderr, [(file, pointer, message, hint), ...])
using Outcome = std::tuple<int, py::bytes, py::bytes, std::vector<std::tuple<std::string, std::string, std::string, std::string>>>;

Outcome run(const std::vector<std::string>& args) {
  const clustersim::cli::CapturedCommand result = clustersim::cli::run_command_captured(args);
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> errors;
  for (const auto& e : result.input_errors) errors.emplace_back(e.file, e.pointer, e.message, e.hint);
  return {result.exit_code, py::bytes(result.out), py::bytes(result.err), errors};
}

}  // namespace

PYBIND11_MODULE(_clustersim, m) {
  m.doc() = "clustersim commands run in this process (use the clustersim package)";
  m.def("run", &run, py::arg("args"),
        "Runs one clustersim command line (without the program name); returns (exit_code, stdout, stderr, input_errors)");
  m.attr("version") = clustersim::cli::version_string();
}
